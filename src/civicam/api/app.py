"""The app factory: one FastAPI application per hub context, one router per resource."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from civicam import __version__
from civicam.api import errors
from civicam.api.headers import SecurityHeaders
from civicam.api.policy import enforce
from civicam.api.routers import analytics, audit, auth, cameras, edge, live, recordings, regions, sites, users
from civicam.context import Context
from civicam.live.playback import abandon_running_exports
from civicam.services import background_services

log = logging.getLogger(__name__)

# The gateways' router first: FastAPI tries routes in order, and a camera's upload every few seconds is the
# hub's most frequent request (trying the others first was a tenth of its CPU per segment). No other router has
# a route that also matches one of its paths (tests/unit/test_route_order.py), so the order changes no
# request's route.
ROUTERS = (edge, auth, regions, sites, cameras, users, audit, recordings, live, analytics)


def create_app(ctx: Context, with_services: bool = False, cluster: str | None = None) -> FastAPI:
    """The hub's ASGI app; ``with_services`` also runs recording and analytics for the app's lifetime
    (here, or on the Ray cluster at ``cluster``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = background_services(ctx, cluster) if with_services else []
        if with_services:
            # This hub is starting: none of its exports can be running; one still marked so was cut short.
            abandoned = abandon_running_exports(ctx.db)
            if abandoned:
                log.warning("%d export(s) interrupted by the last stop marked failed", abandoned)
        for svc in services:
            svc.start()
        app.state.services = services
        try:
            yield
        finally:
            # Made by the first blurred live playlist (live/serving.py), if any: stop them first.
            live_blur = getattr(app.state, "live_blur", None)
            if live_blur is not None:
                live_blur.close()
            relays = getattr(app.state, "relays", None)  # made by the first view of a view-only camera
            if relays is not None:
                relays.close()
            exports = getattr(app.state, "export_workers", None)  # made by the first export request
            if exports is not None:
                exports.close()
            probes = getattr(app.state, "probe_jobs", None)  # made by the first wizard probe (web/routers/onboard)
            if probes is not None:
                probes.close()
            for svc in reversed(services):
                svc.close()

    # Every route, API and dashboard alike, passes the one access policy first (civicam.domain.access).
    app = FastAPI(title="civicam", version=__version__, lifespan=lifespan, dependencies=[Depends(enforce)],
                  description="Privacy-first city video hub: counts and measures, never identifies.")
    app.state.ctx = ctx
    errors.install(app)
    api = APIRouter(prefix="/api")
    for module in ROUTERS:
        api.include_router(module.router)
    app.include_router(api)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # --- web dashboard (civicam.web): pages at /, static files at /static, CSRF check for cookie sessions ---
    from civicam.web.routes import install as install_web

    install_web(app)
    # --- end web dashboard ---
    app.add_middleware(SecurityHeaders)  # added last: outermost, so every response has them, 403s included
    return app
