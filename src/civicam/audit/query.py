"""Searching the audit log: one filter for the API and the dashboard, so they never disagree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_

from civicam.db.models import AuditEvent


def filtered(stmt: Select[Any], q: str | None = None, action: str | None = None, since: datetime | None = None,
             until: datetime | None = None) -> Select[Any]:
    """``stmt`` narrowed to entries whose actor, action or object matches ``q``, of ``action``, in [since, until)."""
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(AuditEvent.actor.ilike(like), AuditEvent.action.ilike(like),
                              AuditEvent.object_id.ilike(like), AuditEvent.object_type.ilike(like)))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since:
        stmt = stmt.where(AuditEvent.ts >= since)
    if until:
        stmt = stmt.where(AuditEvent.ts < until)
    return stmt
