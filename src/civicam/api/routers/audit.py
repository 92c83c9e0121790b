"""The audit log for auditors: search it and verify its hash chain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from civicam.api.deps import DbSession, require
from civicam.api.schemas import AuditEventPublic, AuditVerifyPublic
from civicam.audit.log import Actor, verify_log
from civicam.audit.query import filtered
from civicam.db.models import AuditEvent
from civicam.domain.roles import Perm

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Actor, Depends(require(Perm.audit_read))]


@router.get("", response_model=list[AuditEventPublic])
def search(
    actor: Auditor,
    session: DbSession,
    q: str | None = Query(None, max_length=200, description="Matches actor, action or object."),
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> Sequence[AuditEvent]:
    stmt = filtered(select(AuditEvent), q, action, since, until)
    return session.execute(stmt.order_by(AuditEvent.id.desc()).offset(offset).limit(limit)).scalars().all()


@router.get("/verify", response_model=AuditVerifyPublic)
def verify(actor: Auditor, session: DbSession) -> AuditVerifyPublic:
    count, problems = verify_log(session)
    return AuditVerifyPublic(ok=not problems, entries=count,
                             problems=[{"id": p.id, "message": p.message} for p in problems])
