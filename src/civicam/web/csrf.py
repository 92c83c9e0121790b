"""CSRF defence for cookie-authenticated requests (the browser session), documented here in one place.

The session cookie is ``HttpOnly; SameSite=Strict``, which already stops other sites from sending it on
cross-site requests in current browsers. As a second, browser-independent layer every *state-changing*
request (POST/PUT/PATCH/DELETE) that authenticates with the cookie must also carry a CSRF token:

* The token is ``sha256("civicam-csrf:" + session_token)``: stateless, bound to the session, and useless
  for recovering the session token. A page gets it in ``<meta name="csrf-token">`` (templates) and the
  JS sends it as the ``X-CSRF-Token`` header; HTML forms send it as the ``csrf_token`` field.
* Another origin can neither read the token (same-origin policy) nor compute it (the session cookie is
  HttpOnly), so a forged request fails.
* Requests with ``Authorization: Bearer`` carry no ambient credential and are not checked (API clients).
* When the browser sends an ``Origin`` header on an unsafe request it must be this hub's own origin.

``CSRFMiddleware`` enforces the header for ``/api/`` and ``/web/api/``; the HTML form routes (sign-in,
sign-out) check the form field and the origin themselves (see ``routers/session.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from starlette.requests import HTTPConnection

from civicam.api.deps import SESSION_COOKIE, bearer_header_token

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = "x-csrf-token"
CHECKED_PREFIXES = ("/api/", "/web/api/")


def csrf_token(session_token: str) -> str:
    return hashlib.sha256(f"civicam-csrf:{session_token}".encode()).hexdigest()


def valid(session_token: str | None, presented: str | None) -> bool:
    if not session_token or not presented:
        return False
    return hmac.compare_digest(csrf_token(session_token), presented)


def same_origin(origin: str | None, host: str | None, scheme: str) -> bool:
    """True when there is no Origin header (same-origin GET/HEAD, old browsers) or it names this hub."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return origin in (f"{scheme}://{host}", f"http://{host}", f"https://{host}")


class CSRFMiddleware:
    """Pure ASGI middleware (no body buffering, so streaming and file responses are untouched)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE or not scope["path"].startswith(CHECKED_PREFIXES):
            await self.app(scope, receive, send)
            return
        # The very parse authentication uses (``civicam.api.deps.bearer_token``: Starlette's headers, first
        # value wins; Starlette's cookie parser): a second parser here could disagree with it, and did (a
        # planted ``x="a`` cookie made ``SimpleCookie`` see no session while Starlette saw one).
        conn = HTTPConnection(scope)
        headers = conn.headers
        if bearer_header_token(conn) is not None:
            await self.app(scope, receive, send)  # not a browser session: no ambient credential to abuse
            return
        session = conn.cookies.get(SESSION_COOKIE)
        if not session:
            await self.app(scope, receive, send)  # unauthenticated: the endpoint answers 401 (or signs in)
            return
        problem = None
        if not same_origin(headers.get("origin"), headers.get("host"), scope.get("scheme", "http")):
            problem = "Cross-origin request refused."
        elif not valid(session, headers.get(HEADER)):
            problem = "Missing or wrong CSRF token; reload the page and try again."
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": problem}).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
