"""The ``civicam`` command as an operator runs it: real processes, real exit codes, JSON output."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

CIVICAM = [sys.executable, "-m", "civicam"]


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.env = {**os.environ, "CIVICAM_DATA_DIR": str(data_dir)}
        self.env.pop("CIVICAM_DATABASE_URL", None)
        self.data_dir = data_dir

    def __call__(self, *args: str, stdin: str | None = None, code: int = 0) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*CIVICAM, *args], env=self.env, input=stdin, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == code, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def json(self, *args: str, code: int = 0) -> object:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "hub")


def test_init_is_idempotent_and_prints_the_password_once(cli: Cli) -> None:
    first = cli.json("init")
    assert isinstance(first, dict) and first["created"] is True and len(first["admin_password"]) >= 16
    second = cli("init")
    assert "already initialised" in second.stdout and "nothing changed" in second.stdout
    assert first["admin_password"] not in second.stdout
    assert (cli.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600


def test_commands_before_init_say_what_to_do(cli: Cli) -> None:
    r = cli("camera", "list", code=2)
    assert "civicam init" in r.stderr


def test_registry_round_trip_with_credentials_from_stdin(cli: Cli) -> None:
    cli("init")
    region = cli.json("region", "add", "North")
    assert isinstance(region, dict)
    site = cli.json("site", "add", "--region", "North", "--name", "Mall", "--contact-name", "Ana",
                    "--contact-email", "ana@mall.example", "--contact-phone", "+1 555 0101")
    assert isinstance(site, dict) and site["region_id"] == region["id"]
    out = cli("camera", "add", "--site", str(site["id"]), "--name", "Door", "--url", "rtsp://127.0.0.1:9/door",
              "--username", "viewer", "--password-stdin", stdin="Very-secret-1\n")
    cam_id = int(out.stdout.strip())
    cams = cli.json("camera", "list")
    assert cams == [{"id": cam_id, "site_id": site["id"], "name": "Door", "url": "rtsp://127.0.0.1:9/door",
                     "status": "pending", "has_credentials": True}]
    everything = cli("audit", "list", "--limit", "100").stdout + cli("camera", "list").stdout
    assert "Very-secret-1" not in everything
    db = (cli.data_dir / "civicam.db").read_bytes()
    assert b"Very-secret-1" not in db


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("camera", "add", "--site", "1", "--name", "X", "--url", "gopher://x"), "Unsupported scheme"),
        (("camera", "add", "--site", "42", "--name", "X", "--url", "rtsp://127.0.0.1/x"), "not found"),
        (("site", "add", "--region", "Nowhere", "--name", "S", "--contact-name", "A", "--contact-email", "a@b.cd"),
         "not found"),
        (("camera", "probe"), "either"),
        (("camera", "probe", "1", "--site", "1"), "either"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(cli: Cli, args: tuple[str, ...], words: str) -> None:
    cli("init")
    cli("region", "add", "North")
    cli("site", "add", "--region", "North", "--name", "Mall", "--contact-name", "Ana", "--contact-email",
        "ana@mall.example")
    r = cli(*args, code=2)
    assert words in r.stderr


def test_audit_verify_detects_tampering(cli: Cli) -> None:
    cli("init")
    cli("region", "add", "North")
    cli("region", "add", "South")
    ok = cli.json("audit", "verify")
    assert isinstance(ok, dict) and ok["ok"] is True and ok["entries"] == 4
    with sqlite3.connect(cli.data_dir / "civicam.db") as conn:
        conn.execute("UPDATE audit_events SET detail = '{\"name\": \"Elsewhere\"}' WHERE action = 'region.create'"
                     " AND id = 3")
    bad = cli.json("audit", "verify", code=1)
    assert isinstance(bad, dict) and bad["ok"] is False and bad["problems"][0]["id"] == 3
    with sqlite3.connect(cli.data_dir / "civicam.db") as conn:
        conn.execute("DELETE FROM audit_events WHERE id = 4")
    r = cli("audit", "verify", code=1)
    assert "BROKEN" in r.stdout


def test_user_add_prints_a_password_once_and_it_signs_in(cli: Cli) -> None:
    from civicam.auth.passwords import verify_password

    cli("init")
    cli("region", "add", "North")
    cli("site", "add", "--region", "North", "--name", "Mall", "--contact-name", "Ana", "--contact-email",
        "ana@mall.example")
    made = cli.json("user", "add", "rep", "--role", "site_rep", "--site", "1")
    assert isinstance(made, dict) and made["role"] == "site_rep" and len(made["password"]) >= 16
    r = cli("user", "add", "rep2", "--role", "site_rep", code=2)
    assert "site" in r.stderr
    with sqlite3.connect(cli.data_dir / "civicam.db") as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users WHERE username = 'rep'").fetchone()
        actions = [a for (a,) in conn.execute("SELECT action FROM audit_events")]
    assert verify_password(stored, made["password"]) and made["password"] not in stored
    assert actions.count("user.create") == 2  # the admin at init, then rep
