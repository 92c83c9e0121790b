"""Sign-in over the API and the dashboard form: locked accounts and addresses cost no argon2 and no audit row."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

import civicam.auth.users as users
from civicam.auth.throttle import Limit, LoginThrottle
from civicam.db.models import AuditEvent
from support.hub import ADMIN_PASSWORD, Api


def _actions(api: Api) -> Counter[str]:
    with api.ctx.db.session() as s:
        return Counter(s.execute(select(AuditEvent.action)).scalars())


def _lockouts(api: Api) -> list[tuple[str, str | None]]:
    with api.ctx.db.session() as s:
        rows = s.execute(select(AuditEvent).where(AuditEvent.action == "auth.lockout")).scalars()
        return [(e.object_type, e.object_id) for e in rows]


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the argon2 verifications sign-in makes (the real function still does the work)."""
    calls: Counter[str] = Counter()
    real = users.verify_password

    def counted(stored: str, password: str) -> bool:
        calls["argon2"] += 1
        return real(stored, password)

    monkeypatch.setattr(users, "verify_password", counted)
    return calls


def test_an_account_locks_after_five_failures_without_further_hashing_or_audit(sqlite_api: Api,
                                                                              hashes: Counter[str]) -> None:
    api = sqlite_api
    # The hub's throttle with locks long enough that a loaded machine cannot outlive them mid-test.
    api.client.app.state.login_throttle = LoginThrottle(Limit(5, base_s=600), Limit(20, base_s=600))  # type: ignore[attr-defined]
    wrong = {"username": "admin", "password": "not-it-at-all"}
    for _ in range(5):
        assert api.client.post("/api/auth/token", json=wrong).status_code == 401
    assert hashes["argon2"] == 5
    before = _actions(api)
    assert before["auth.login_failed"] == 5 and _lockouts(api) == [("account", "admin")]
    for password in ("not-it-at-all", ADMIN_PASSWORD):  # even the right password waits out the lock
        r = api.client.post("/api/auth/token", json={"username": "admin", "password": password})
        assert r.status_code == 429 and 590 <= int(r.headers["retry-after"]) <= 600
    r = api.client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "next": "/"})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text and "civicam_session" not in r.cookies
    assert hashes["argon2"] == 5 and _actions(api) == before  # throttled: no argon2, no audit row


def test_an_address_locks_after_its_failures_across_accounts_and_is_audited_once(
        sqlite_api: Api, hashes: Counter[str]) -> None:
    api = sqlite_api
    # An address limit of 8 here (20 by default) keeps the argon2 work of the test small.
    api.client.app.state.login_throttle = LoginThrottle(Limit(5, base_s=600), Limit(8, base_s=600))  # type: ignore[attr-defined]
    for i in range(8):
        r = api.client.post("/login", data={"username": f"guess{i}", "password": "whatever-pw", "next": "/"})
        assert r.status_code == 401
    assert _lockouts(api) == [("address", "testclient")]
    for _ in range(5):  # the admin's right password from this address: refused while the address is locked
        assert api.client.post("/api/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}
                               ).status_code == 429
    assert hashes["argon2"] == 8 and len(_lockouts(api)) == 1 and _actions(api)["auth.login_failed"] == 8


def test_a_success_before_the_limit_clears_the_account(sqlite_api: Api) -> None:
    api = sqlite_api
    for _ in range(4):
        assert api.client.post("/api/auth/token", json={"username": "admin", "password": "wrong-pass"}
                               ).status_code == 401
    api.login("admin", ADMIN_PASSWORD)
    for _ in range(4):
        assert api.client.post("/api/auth/token", json={"username": "admin", "password": "wrong-pass"}
                               ).status_code == 401
    api.login("admin", ADMIN_PASSWORD)
    assert _lockouts(api) == []
