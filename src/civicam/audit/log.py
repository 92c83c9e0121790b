"""Writing and reading the audit log in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from civicam.audit.chain import GENESIS, Entry, Problem, entry_hash, verify
from civicam.db.base import utcnow
from civicam.db.models import AuditEvent, AuditHead


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: a user over HTTP, or the operator at the command line."""

    name: str
    source: str
    role: str = "admin"
    site_id: int | None = None
    user_id: int | None = None
    view_unblurred: bool = False


def record(
    session: Session,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object = None,
    detail: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction, so the audit entry commits with the change it describes."""
    # Bumping the head row first takes the write lock (a row lock on PostgreSQL, the database lock on
    # SQLite), so concurrent writers queue here instead of forking the chain.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=1, hash=GENESIS)
        session.add(head)
        session.flush()
    entry = Entry(
        id=head.seq,
        ts=at or utcnow(),
        actor=actor.name,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        source=actor.source,
        detail=detail or {},
        prev_hash=head.hash,
    )
    digest = entry_hash(entry)
    event = AuditEvent(
        id=entry.id,
        ts=entry.ts,
        actor=entry.actor,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        source=entry.source,
        detail=entry.detail,
        prev_hash=entry.prev_hash,
        hash=digest,
    )
    session.add(event)
    head.hash = digest
    session.flush()
    return event


def _entry(ev: AuditEvent) -> Entry:
    return Entry(ev.id, ev.ts, ev.actor, ev.action, ev.object_type, ev.object_id, ev.source, ev.detail,
                 ev.prev_hash, ev.hash)


def verify_log(session: Session) -> tuple[int, list[Problem]]:
    """(entries checked, problems found) for the whole log, streamed in id order."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000)).scalars()
    count = 0

    def entries() -> Any:
        nonlocal count
        for ev in rows:
            count += 1
            yield _entry(ev)

    problems = verify(entries(), head.seq if head else 0, head.hash if head else GENESIS)
    return count, problems
