"""Domain errors mapped to HTTP answers in one place, so routers stay free of try/except."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from civicam.api.policy import NotSignedIn
from civicam.auth.users import UserError
from civicam.domain.urls import redact
from civicam.live.answers import Refused
from civicam.registry.service import Forbidden, NotFound, RegistryError


def install(app: FastAPI) -> None:
    def handler(code: int):  # type: ignore[no-untyped-def]
        async def respond(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": redact(str(exc))}, status_code=code)

        return respond

    async def sign_in(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc) or "Sign in first."}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    app.add_exception_handler(NotSignedIn, sign_in)
    app.add_exception_handler(RegistryError, handler(400))
    app.add_exception_handler(UserError, handler(400))
    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(Forbidden, handler(403))

    async def refused(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refused)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(Refused, refused)

    # A number no column can hold (an id of 2**70 in a path): SQLite's driver raises OverflowError,
    # PostgreSQL's a DataError. No such object can exist; the client gets a clear 400, not a 500.
    async def out_of_range(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "A number or value in the request is out of range."}, status_code=400)

    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(DataError, out_of_range)
