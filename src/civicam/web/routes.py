"""The operators' web dashboard: server-rendered pages (Jinja2) plus small vanilla JS modules.

One router per page group lives in ``civicam.web.routers``; what the pages share (session, rendering,
paging, errors) in ``civicam.web.pages``. Mount with ``install(app)`` (routers, static files, CSRF
middleware, login redirects and HTML error pages).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from civicam.api.policy import NotSignedIn
from civicam.domain.urls import redact
from civicam.registry import service
from civicam.web.csrf import CSRFMiddleware
from civicam.web.pages import HERE, LoginRequired, PageError, error_page
from civicam.web.routers import alerts, audit, onboard, overview, registry, session, users, wall

ROUTERS = (session, overview, wall, registry, onboard, alerts, audit, users)


def install(app: FastAPI) -> None:
    """Everything the dashboard needs on the app: pages, static files, CSRF check and HTML error pages."""
    for module in ROUTERS:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static"), check_dir=True), name="static")
    app.add_middleware(CSRFMiddleware)

    async def login_required(request: Request, exc: Exception) -> Response:
        detail = str(exc) or "Sign in first."
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if request.url.path.startswith("/web/api/"):
            return JSONResponse({"detail": detail}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        if request.url.path.startswith("/web/api/"):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return error_page(request, exc.status, exc.title, exc.message)

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/api/", "/web/api/")):
            return JSONResponse({"detail": redact(str(exc))}, status_code=404)
        return error_page(request, 404, "Not found", f"{exc} It does not exist, or your role may not see it.")

    async def forbidden(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/api/", "/web/api/")):
            return JSONResponse({"detail": redact(str(exc))}, status_code=403)
        return error_page(request, 403, "Not allowed", str(exc))

    app.add_exception_handler(NotSignedIn, login_required)  # the access policy's "sign in first"
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageError, page_error)
    # The API maps these to JSON already; on pages they become readable HTML pages instead.
    app.add_exception_handler(service.NotFound, not_found)
    app.add_exception_handler(service.Forbidden, forbidden)
