"""Security headers on every response: a strict Content-Security-Policy, no framing, no sniffing, no
referrer to other sites.

The dashboard has no inline script or style (its JS sets styles through the CSSOM, which CSP allows), so
its policy allows scripts and styles from the hub itself only. ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY`` stop other sites from framing the "unblur with reason" form (clickjacking).
``Referrer-Policy: same-origin`` keeps the unblurred grants that ride on playlist URLs out of Referer
headers to other sites (``same-origin``, not ``no-referrer``: under ``no-referrer`` browsers send
``Origin: null`` on form posts, which the sign-in form's origin check rightly refuses). FastAPI's
interactive API docs (``/docs``, ``/redoc``) are pages FastAPI renders with an inline script and assets
from a CDN: they get a policy that allows those, still unframeable.
"""

from __future__ import annotations

from typing import Any

# blob: for media and workers: hls.js feeds the <video> element through MediaSource object URLs.
DASHBOARD_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                 "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; font-src 'self'; "
                 "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com; font-src 'self' https://fonts.gstatic.com; "
            "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers every response to ``path`` carries. Pure."""
    csp = DOCS_CSP if path == "/docs" or path.startswith(DOCS_PATHS) else DASHBOARD_CSP
    return [(b"content-security-policy", csp.encode()), (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin")]


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to every HTTP response start, errors and static files included;
    a header the endpoint set itself is left as it is."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope.get("path", ""))

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
