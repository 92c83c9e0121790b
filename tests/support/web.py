"""A hub over HTTP for end-to-end tests: its process, a free loopback port, readiness, signing in by the form."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

SESSION_COOKIE = "civicam_session"
_CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, its output in ``log``; stopped on the way out (killed if it does not stop)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def wait_healthy(url: str, timeout_s: float, alive: Callable[[], bool]) -> bool:
    """Poll ``url``/healthz until it answers 200 (True), or until ``timeout_s`` passed or the server is no
    longer ``alive`` (False: the caller stops it and says why)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not alive():
            return False
        time.sleep(0.05)  # polling interval of a deadline-bounded wait, not synchronisation by sleep


def form_sign_in(client: httpx.Client, username: str, password: str) -> tuple[str, str]:
    """Sign in through the sign-in form as a browser does; the session cookie and the CSRF token of the
    signed-in page (what a browser's scripts send with each change)."""
    r = client.post("/login", data={"username": username, "password": password, "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    token = client.cookies.get(SESSION_COOKIE)
    page = client.get("/")
    csrf = _CSRF.search(page.text)
    assert token and csrf, page.text[:500]
    return token, csrf.group(1)


def browser_sign_in(page: Any, url: str, username: str, password: str) -> None:
    """Sign a Playwright page in through the sign-in form and wait for the dashboard it lands on."""
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")
