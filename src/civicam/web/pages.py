"""What every dashboard page shares: templates, the browser session's actor, rendering, paging and errors.

Pages read through the same scoped registry service as the API (a site representative sees only their
own site, here as there); every change and every video view goes through the JSON API from the browser,
so roles, validation and audit are the API's own and nothing is audited twice. Sign-in turns a password
into the same kind of token the API issues, kept in an ``HttpOnly; SameSite=Strict`` cookie that
``civicam.api.deps.current_actor`` already accepts. CSRF: see ``civicam.web.csrf``.
"""

from __future__ import annotations

import importlib
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from civicam import __version__
from civicam.api.deps import SESSION_COOKIE, client_address
from civicam.api.policy import NotSignedIn
from civicam.audit.log import Actor
from civicam.auth.users import user_for_token
from civicam.context import Context
from civicam.db.models import User
from civicam.domain.roles import Perm, allows
from civicam.web.csrf import csrf_token

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


class LoginRequired(NotSignedIn):
    """No valid browser session: pages redirect to the sign-in page, ``/web/api`` answers 401."""


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def page_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def session_actor(request: Request) -> tuple[Actor, User, str]:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired()
    with page_ctx(request).db.session() as s:
        user = user_for_token(s, token)
        if user is None:
            raise LoginRequired()
        s.expunge(user)
    actor = Actor(name=user.username, source=client_address(request), role=user.role, site_id=user.site_id,
                  user_id=user.id, view_unblurred=user.view_unblurred)
    return actor, user, token


def need(actor: Actor, perm: Perm) -> None:
    if not allows(actor.role, perm):
        raise PageError(403, "Not allowed", f"Your role ({actor.role}) may not open this page.")


def _features() -> dict[str, bool]:
    """Which optional API areas this build has (the same optional routers ``create_app`` mounts)."""
    found = {}
    for name in ("recordings", "live", "analytics"):
        try:
            importlib.import_module(f"civicam.api.routers.{name}")
            found[name] = True
        except Exception:  # noqa: BLE001 — a broken or missing optional area just hides its UI parts
            found[name] = False
    return found


_FEATURES: dict[str, bool] | None = None


def features() -> dict[str, bool]:
    global _FEATURES
    if _FEATURES is None:
        _FEATURES = _features()
    return _FEATURES


def render(request: Request, name: str, actor: Actor | None, token: str | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    perms = {p.value: allows(actor.role, p) for p in Perm} if actor else {}
    base = {"actor": actor, "perms": perms, "csrf": csrf_token(token) if token else "",
            "features": features(), "version": __version__, "path": request.url.path}
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def page_url(request: Request, **changes: Any) -> str:
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def pager(request: Request, key: str, page: int, total: int, per_page: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    return {"key": key, "page": page, "pages": pages, "total": total, "per_page": per_page,
            "first": (page - 1) * per_page + 1 if total else 0, "last": min(page * per_page, total),
            "prev": page_url(request, **{key: page - 1}) if page > 1 else None,
            "next": page_url(request, **{key: page + 1}) if page < pages else None}


def recording_health(request: Request) -> dict[int, dict[str, Any]]:
    """Per camera recorder state from the in-process recording service, when this hub runs one."""
    for svc in getattr(request.app.state, "services", []):
        health = getattr(svc, "health", None)
        if callable(health):
            try:
                return {cid: {"state": h.state, "since": h.since} for cid, h in health().items()}
            except Exception:  # noqa: BLE001 — health is informative; the page must still render
                return {}
    return {}


def opt_int(value: str, what: str) -> int | None:
    """An optional id from a GET form, where "" means "any"."""
    if not value:
        return None
    if not value.isdigit():
        raise PageError(400, "Bad filter", f"'{value}' is not a {what} number.")
    return int(value)


def safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def parse_time(value: str, what: str) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise PageError(400, "Bad date", f"'{value}' is not a date/time for '{what}' (use YYYY-MM-DDTHH:MM).") \
            from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    try:
        actor, _, token = session_actor(request)
    except LoginRequired:
        actor, token = None, None
    return render(request, "error.html", actor, token, status_code=status, title=title, message=message, code=status)
