"""FastAPI dependencies: the hub context, a database session, and the acting user with their permissions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from civicam.audit.log import Actor
from civicam.auth.users import user_for_token
from civicam.context import Context
from civicam.domain.roles import Perm, allows

SESSION_COOKIE = "civicam_session"


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(get_context)]


def get_session(ctx: Ctx) -> Iterator[Session]:
    with ctx.db.session() as session:
        yield session


# Function scope: the transaction commits before the response is sent, so a client that reads back
# what it just created always finds it.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def bearer_header_token(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if the request authenticates that way."""
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def bearer_token(request: HTTPConnection) -> str | None:
    """The token from ``Authorization: Bearer``, else from the browser's session cookie.

    The CSRF middleware (``civicam.web.csrf``) reads the request through this same function's parts, so
    the two never disagree about whether a request carries the session cookie.
    """
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return bearer_header_token(request)
    return request.cookies.get(SESSION_COOKIE)


def current_actor(request: Request, ctx: Ctx) -> Actor:
    token = bearer_token(request)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in first.", headers={"WWW-Authenticate": "Bearer"})
    with ctx.db.session() as session:
        user = user_for_token(session, token)
        if user is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "Your session has expired or was revoked; sign in again.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Actor(name=user.username, source=client_address(request), role=user.role, site_id=user.site_id,
                     user_id=user.id, view_unblurred=user.view_unblurred)


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require(perm: Perm) -> Callable[[Actor], Actor]:
    """A dependency that lets the request through only if the actor's role carries ``perm``."""

    def check(actor: CurrentActor) -> Actor:
        if not allows(actor.role, perm):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"Your role ({actor.role}) may not do this ({perm}).")
        return actor

    return check
