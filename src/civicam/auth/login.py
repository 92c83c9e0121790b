"""Signing in, shared by the API and the dashboard: throttle, password check, token and audit in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from civicam.audit.log import Actor, record
from civicam.auth.throttle import LoginThrottle, Throttled
from civicam.auth.users import authenticate, issue_token
from civicam.db.models import User


@dataclass(frozen=True)
class SignIn:
    """A sign-in's result: the user and their new token, or why not (``retry_after_s`` when throttled)."""

    user: User | None = None
    token: str | None = None
    retry_after_s: float | None = None


def sign_in(session: Session, throttle: LoginThrottle, username: str, password: str, source: str, ttl_s: int,
            detail: dict[str, Any] | None = None) -> SignIn:
    """Check a password and issue a token, audited; a throttled attempt costs neither argon2 nor an audit row.

    A failure is committed at once (its audit row must survive the error response); a lock-out is audited
    once, when the account or address first locks.
    """
    try:
        ticket = throttle.begin(username, source)
    except Throttled as exc:
        return SignIn(retry_after_s=exc.retry_after_s)
    user: User | None = None
    try:
        user = authenticate(session, username, password) if username and password else None
    finally:
        outcome = throttle.finish(ticket, ok=user is not None)
    extra = detail or {}
    if user is None:
        who = Actor(name=username[:100] or "-", source=source, role="none")
        record(session, who, "auth.login_failed", "user", None, extra)
        for key in outcome.locked:
            kind, _, what = key.partition(":")
            record(session, who, "auth.lockout", "account" if kind == "user" else "address", what[:64],
                   {**extra, "lock_s": outcome.lock_s.get(key)})
        session.commit()
        return SignIn()
    token = issue_token(session, user, ttl_s)
    record(session, Actor(name=user.username, source=source, role=user.role), "auth.login", "user", user.id, extra)
    return SignIn(user=user, token=token)
