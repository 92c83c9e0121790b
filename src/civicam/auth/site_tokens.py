"""Enrolment tokens of site gateways: issue, rotate, revoke, and resolve a presented token to its site.

A token is shown once; only its SHA-256 is stored. A site has at most one live token: rotating revokes
the old one in the same transaction, so a leaked token stops working the moment a new one is issued.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

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
