"""Enrolment tokens of site gateways: issue, rotate, revoke, and resolve a presented token to its site.

A token is shown once; only its SHA-256 is stored. A site has at most one live token: rotating revokes
the old one in the same transaction, so a leaked token stops working the moment a new one is issued.

``TokenCache`` spares a gateway's every request its own database transaction: a token resolved once is
remembered (under a keyed hash, never the token itself) for a short time. Revocation still holds at once:
what a gateway changes on the hub (uploads, gaps, cameras) re-checks the token row in the transaction it
needs anyway (``is_live``), and the hub's own revoke/rotate empties the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from civicam.audit.log import Actor, record
from civicam.db.base import utcnow
from civicam.db.models import Site, SiteToken

PREFIX = "cst_"


class SiteTokenError(ValueError):
    """The request cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class Issued:
    site_id: int
    token: str  # shown once
    token_id: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def active_token(session: Session, site_id: int) -> SiteToken | None:
    return session.execute(select(SiteToken).where(SiteToken.site_id == site_id, SiteToken.revoked_at.is_(None))
                           .order_by(SiteToken.id.desc()).limit(1)).scalar_one_or_none()


def issue(session: Session, actor: Actor, site_id: int, rotate: bool = False) -> Issued:
    """A new token for the site; with ``rotate`` the live one is revoked first, else one must not exist."""
    if session.get(Site, site_id) is None:
        raise LookupError(f"Site {site_id} not found.")
    live = active_token(session, site_id)
    if live is not None and not rotate:
        raise SiteTokenError(f"Site {site_id} already has a live token (issued {live.created_at:%Y-%m-%d %H:%M}Z); "
                             "rotate it to get a new one, the old one then stops working.")
    revoked = revoke(session, actor, site_id, audit=False) if live is not None else 0
    token = PREFIX + secrets.token_urlsafe(32)
    row = SiteToken(site_id=site_id, token_hash=_hash(token))
    session.add(row)
    session.flush()
    record(session, actor, "site.token_rotate" if revoked else "site.token_issue", "site", site_id,
           {"token_id": row.id, "revoked": revoked})
    return Issued(site_id, token, row.id)


def revoke(session: Session, actor: Actor, site_id: int, audit: bool = True) -> int:
    """Revoke every live token of the site; returns how many."""
    if session.get(Site, site_id) is None:
        raise LookupError(f"Site {site_id} not found.")
    result = session.execute(update(SiteToken).where(SiteToken.site_id == site_id, SiteToken.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if audit:
        record(session, actor, "site.token_revoke", "site", site_id, {"revoked": count})
    return count


def site_for_token(session: Session, token: str) -> SiteToken | None:
    """The live token row a presented token matches, or None (unknown and revoked are not told apart)."""
    if not token.startswith(PREFIX):
        return None
    return session.execute(select(SiteToken).where(SiteToken.token_hash == _hash(token),
                                                   SiteToken.revoked_at.is_(None))).scalar_one_or_none()


def is_live(session: Session, token_id: int) -> bool:
    """Whether the token row is still unrevoked (a primary-key read in the caller's transaction)."""
    row = session.get(SiteToken, token_id)
    return row is not None and row.revoked_at is None


@dataclass(frozen=True)
class Resolved:
    """A presented token's site and token row."""

    site_id: int
    token_id: int


class TokenCache:
    """Tokens already resolved to their site, for ``ttl_s``; thread-safe; bounded to ``max_entries``.

    Keys are HMAC-SHA256 of the token under a key made at start-up, so the process's memory holds no
    token that could be replayed. Unknown tokens are not remembered (a miss always asks the database).
    """

    def __init__(self, ttl_s: float = 10.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[Resolved, float]] = {}

    def _k(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode(), hashlib.sha256).digest()

    def get(self, token: str) -> Resolved | None:
        key = self._k(token)
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            if hit[1] <= self._clock():
                del self._entries[key]
                return None
            return hit[0]

    def put(self, token: str, resolved: Resolved) -> None:
        key = self._k(token)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()  # a flood of distinct live tokens is not a case to optimise
            self._entries[key] = (resolved, self._clock() + self.ttl_s)

    def forget_token(self, token_id: int) -> None:
        """Drop every entry of one token row (found revoked by a transaction)."""
        with self._lock:
            for key in [k for k, (r, _) in self._entries.items() if r.token_id == token_id]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def resolve(self, session_factory: Callable[[], Any], token: str) -> Resolved | None:
        """The cached answer, else the database's (through ``session_factory``, a context manager)."""
        hit = self.get(token)
        if hit is not None:
            return hit
        with session_factory() as s:
            row = site_for_token(s, token)
            if row is None:
                return None
            resolved = Resolved(row.site_id, row.id)
        self.put(token, resolved)
        return resolved
