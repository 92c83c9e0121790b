"""Sign-in (password to bearer token), sign-out and who-am-I."""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, Request, status

from civicam.api.deps import Ctx, CurrentActor, DbSession, bearer_token, client_address
from civicam.api.schemas import LoginIn, TokenPublic, UserPublic
from civicam.api.state import shared
from civicam.audit.log import record
from civicam.auth.login import sign_in
from civicam.auth.throttle import LoginThrottle
from civicam.auth.users import revoke_token
from civicam.db.models import User

router = APIRouter(prefix="/auth", tags=["auth"])


def login_throttle(request: Request) -> LoginThrottle:
    """The hub's one sign-in throttle, shared by the API and the dashboard's sign-in form."""
    return shared(request, "login_throttle", LoginThrottle)


def too_many(retry_after_s: float) -> HTTPException:
    wait = max(1, math.ceil(retry_after_s))
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                         f"Too many failed sign-ins; try again in {wait} s.", headers={"Retry-After": str(wait)})


@router.post("/token", response_model=TokenPublic,
             responses={401: {"description": "Wrong username or password."},
                        429: {"description": "Too many failed sign-ins (see Retry-After)."}})
def login(body: LoginIn, request: Request, session: DbSession, ctx: Ctx) -> TokenPublic:
    result = sign_in(session, login_throttle(request), body.username, body.password, client_address(request),
                     ctx.settings.token_ttl_s)
    if result.retry_after_s is not None:
        raise too_many(result.retry_after_s)
    if result.token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Wrong username or password.")
    return TokenPublic(access_token=result.token, expires_in=ctx.settings.token_ttl_s)


@router.post("/logout", status_code=204)
def logout(request: Request, actor: CurrentActor, session: DbSession) -> None:
    token = bearer_token(request)
    if token is not None and revoke_token(session, token):
        record(session, actor, "auth.logout", "user", actor.user_id, {})


@router.get("/me", response_model=UserPublic)
def me(actor: CurrentActor, session: DbSession) -> User:
    user = session.get(User, actor.user_id)
    assert user is not None  # current_actor found it a moment ago
    return user
