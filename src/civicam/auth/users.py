"""Users and bearer tokens stored in the database; only token hashes are kept."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from civicam.auth.passwords import check_strength, hash_password, verify_password
from civicam.db.base import utcnow
from civicam.db.models import Site, Token, User
from civicam.domain.roles import Role


class UserError(ValueError):
    """A user cannot be created or changed as asked."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    site_id: int | None = None,
    view_unblurred: bool = False,
) -> User:
    if role not in Role.__members__:
        raise UserError(f"Unknown role '{role}'; use one of {', '.join(Role.__members__)}.")
    if not username or len(username) > 100 or not username.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise UserError("Usernames are 1-100 letters, digits, '.', '_' or '-'.")
    if (weak := check_strength(password)) is not None:
        raise UserError(weak)
    if role == Role.site_rep:
        if site_id is None:
            raise UserError("A site representative needs the site they represent (site_id).")
        if session.get(Site, site_id) is None:
            raise UserError(f"Site {site_id} does not exist.")
    elif site_id is not None:
        raise UserError("Only site representatives are bound to a site.")
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none() is not None:
        raise UserError(f"User '{username}' already exists.")
    user = User(username=username, password_hash=hash_password(password), role=role, site_id=site_id,
                view_unblurred=view_unblurred)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.is_active:
        # Hash anyway so a wrong username costs the same time as a wrong password.
        verify_password(hash_password("x" * 12), password)
        return None
    return user if verify_password(user.password_hash, password) else None


def issue_token(session: Session, user: User, ttl_s: int) -> str:
    token = secrets.token_urlsafe(32)
    session.add(Token(token_hash=_digest(token), user_id=user.id, expires_at=utcnow() + timedelta(seconds=ttl_s)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    row = session.execute(select(Token).where(Token.token_hash == _digest(token))).scalar_one_or_none()
    if row is None or row.revoked or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.is_active else None


def revoke_token(session: Session, token: str) -> bool:
    row = session.execute(select(Token).where(Token.token_hash == _digest(token))).scalar_one_or_none()
    if row is None or row.revoked:
        return False
    row.revoked = True
    return True
