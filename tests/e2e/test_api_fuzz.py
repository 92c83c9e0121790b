"""Schemathesis over the hub's own OpenAPI schema, against a real hub process on 127.0.0.1 (fresh SQLite).

Every generated request is sent as each role (bearer tokens of admin, operator, site representative,
auditor; the admin's browser session with its CSRF token; and nobody): no answer may be a 5xx, and every
answer the schema describes must match it. ``make test`` runs a few examples per operation (seconds);
``make fuzz-api`` runs many (``CIVICAM_FUZZ_API_EXAMPLES``). Figures go to test-artifacts/api-fuzz.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from civicam.audit.log import Actor
from civicam.auth.users import create_user
from civicam.config.settings import get_settings
from civicam.context import open_context
from civicam.registry import service
from support.web import SESSION_COOKIE, form_sign_in, free_port, process, wait_healthy

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("CIVICAM_FUZZ_API_EXAMPLES", "3"))
SETUP = Actor(name="fuzz-setup", source="pytest")
PASSWORDS = {"admin": "Adm1n-fuzz-pass", "operator": "Oper-fuzz-passw0rd", "rep": "Rep-fuzz-passw0rd",
             "auditor": "Aud-fuzz-passw0rd"}
# Left out: probes reach out to whatever camera URL a fuzzer registered (tests talk to loopback only),
# and sign-out would revoke the very tokens the run signs in with.
EXCLUDED_PATHS = ("/api/cameras/{camera_id}/probe", "/api/sites/{site_id}/probe", "/api/auth/logout")
FIGURES: Counter[str] = Counter()


def _seed(data: Path) -> None:
    ctx = open_context(get_settings(data_dir=data), create=True)
    try:
        with ctx.db.session() as s:
            region = service.add_region(s, SETUP, "North")
            a = service.add_site(s, SETUP, region, "Mall", "Ann", "ann@mall.example")
            b = service.add_site(s, SETUP, region, "Depot", "Bob", "bob@depot.example")
            for site in (a, b):
                service.add_camera(s, SETUP, ctx.secrets, site.id, "Door", "rtsp://127.0.0.1:9/door")
            create_user(s, "admin", PASSWORDS["admin"], "admin")
            create_user(s, "operator", PASSWORDS["operator"], "operator", view_unblurred=True)
            create_user(s, "rep", PASSWORDS["rep"], "site_rep", a.id)
            create_user(s, "auditor", PASSWORDS["auditor"], "auditor")
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("fuzz-hub")
    _seed(data)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    args = [sys.executable, str(REPO / "tests" / "support" / "hub_process.py"), str(data), str(port)]
    with process(args, env, data / "hub.log") as proc:
        url = f"http://127.0.0.1:{port}"
        if not wait_healthy(url, 60, lambda: proc.poll() is None):
            pytest.fail(f"the hub process did not answer within 60 s: {(data / 'hub.log').read_text()[-2000:]}")
        auth: dict[str, dict[str, dict[str, str]]] = {"nobody": {"headers": {}, "cookies": {}}}
        for user, password in PASSWORDS.items():
            r = httpx.post(f"{url}/api/auth/token", json={"username": user, "password": password}, timeout=30)
            assert r.status_code == 200, r.text
            auth[user] = {"headers": {"Authorization": f"Bearer {r.json()['access_token']}"}, "cookies": {}}
        with httpx.Client(base_url=url, timeout=30) as browser:
            token, csrf = form_sign_in(browser, "admin", PASSWORDS["admin"])
        auth["admin-session"] = {"headers": {"X-CSRF-Token": csrf}, "cookies": {SESSION_COOKIE: token}}
        try:
            yield {"url": url, "auth": auth, "log": data / "hub.log"}
        finally:
            out = REPO / "test-artifacts"
            out.mkdir(exist_ok=True)
            (out / "api-fuzz.json").write_text(json.dumps({"examples_per_operation": EXAMPLES, **FIGURES},
                                                          indent=2))


def _check(case: Any, hub: dict[str, Any], failures: list[str]) -> None:
    """Send ``case`` as every role; note (not raise) what fails, so one run reports every finding."""
    for role, auth in hub["auth"].items():
        began = time.monotonic()
        try:
            response = case.call(base_url=hub["url"], headers=auth["headers"], cookies=auth["cookies"],
                                 timeout=120)
        except Exception as exc:  # noqa: BLE001 — no answer at all (a timeout, a dropped connection): a finding
            FIGURES["no_answer"] += 1
            failures.append(f"{role}: {case.method} {case.formatted_path}: no answer after "
                            f"{time.monotonic() - began:.1f} s: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        FIGURES["slowest_ms"] = max(FIGURES["slowest_ms"], round((time.monotonic() - began) * 1000))
        FIGURES["requests"] += 1
        FIGURES[f"status_{response.status_code // 100}xx"] += 1
        if response.status_code >= 500:
            FIGURES["server_errors"] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup is a BaseExceptionGroup
            FIGURES["failures"] += 1
            detail = " ".join(str(exc).split())[:300]
            failures.append(f"{role}: {case.method} {case.formatted_path} -> {response.status_code}: {detail}"
                            f" | {response.text[:300]}")
    FIGURES["cases"] += 1


@pytest.mark.slow
@pytest.mark.timeout(300 if EXAMPLES <= 10 else 0)  # ~20 s idle, ~60 s at a load of 10; none for fuzz-api
def test_no_request_from_any_role_gets_a_5xx_or_an_answer_that_breaks_the_schema(hub: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_url(f"{hub['url']}/openapi.json").exclude(path=list(EXCLUDED_PATHS))
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                _check(case, hub, failures)

            try:
                run()
            except Unsatisfiable:  # nothing to negate (an operation without parameters or body)
                FIGURES["modes_without_negative_cases"] += 1
            except Exception as exc:  # noqa: BLE001 — an error of the run itself: a finding too
                FIGURES["failures"] += 1
                inner = getattr(exc, "exceptions", [exc])
                trace = "".join(traceback.format_exception(inner[0]))[-1500:]
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:200]}\n{trace}")
    FIGURES["operations"] = operations
    assert operations >= 35  # the schema was read: every route but the excluded ones
    assert failures == [], "\n".join(sorted(set(failures))[:50])
