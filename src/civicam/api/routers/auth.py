"""Sign-in (password to bearer token), sign-out and who-am-I."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from civicam.api.deps import Ctx, CurrentActor, DbSession, bearer_token, client_address
from civicam.api.schemas import LoginIn, TokenPublic, UserPublic
from civicam.audit.log import Actor, record
from civicam.auth.users import authenticate, issue_token, revoke_token
from civicam.db.models import User

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenPublic)
def login(body: LoginIn, request: Request, session: DbSession, ctx: Ctx) -> TokenPublic:
    user = authenticate(session, body.username, body.password)
    source = client_address(request)
    if user is None:
        record(session, Actor(name=body.username[:100], source=source, role="none"), "auth.login_failed", "user",
               None, {})
        session.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Wrong username or password.")
    token = issue_token(session, user, ctx.settings.token_ttl_s)
    record(session, Actor(name=user.username, source=source, role=user.role), "auth.login", "user", user.id, {})
    return TokenPublic(access_token=token, expires_in=ctx.settings.token_ttl_s)


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
