"""Users and roles, managed by admins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from civicam.api.deps import DbSession, require
from civicam.api.schemas import UserCreate, UserPublic
from civicam.audit.log import Actor, record
from civicam.auth.users import create_user
from civicam.db.models import User
from civicam.domain.roles import Perm

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Actor, Depends(require(Perm.users_write))]


@router.get("", response_model=list[UserPublic])
def list_users(actor: Admin, session: DbSession) -> Sequence[User]:
    return session.execute(select(User).order_by(User.id)).scalars().all()


@router.post("", response_model=UserPublic, status_code=201)
def add_user(body: UserCreate, actor: Admin, session: DbSession) -> User:
    user = create_user(session, body.username, body.password, body.role, body.site_id, body.view_unblurred)
    record(session, actor, "user.create", "user", user.id,
           {"username": user.username, "role": user.role, "site_id": user.site_id,
            "view_unblurred": user.view_unblurred})
    return user
