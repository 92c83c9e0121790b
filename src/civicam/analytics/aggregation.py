"""Storing anonymous people events as 15-minute counts, and reading aggregates per camera, site or region."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from civicam.analytics.records import PeopleCount
from civicam.db.models import Camera, Site
from civicam.domain.compliance import Counts, Interval, Published, bucket_start, publish, rollup

Scope = Literal["camera", "site", "region"]


@dataclass(frozen=True)
class CameraEvent:
    """One person entering, as the pipeline emits it: which camera, when, and the voted mask label."""

    camera_id: int
    ts: datetime
    label: str  # mask | no_mask | unknown
    confidence: float


def add_events(session: Session, events: Iterable[CameraEvent]) -> int:
    """Fold events into their 15-minute rows with one upsert per (camera, bucket); returns events stored."""
    sums: dict[tuple[int, datetime], Counts] = defaultdict(Counts)
    n = 0
    for ev in events:
        key = (ev.camera_id, bucket_start(ev.ts))
        sums[key] = sums[key] + Counts.of_label(ev.label)
        n += 1
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for (camera_id, start), c in sums.items():
        stmt = insert(PeopleCount).values(camera_id=camera_id, bucket_start=start, people=c.people,
                                          masked=c.masked, unmasked=c.unmasked, unknown=c.unknown)
        stmt = stmt.on_conflict_do_update(
            index_elements=["camera_id", "bucket_start"],
            set_={
                "people": PeopleCount.people + c.people,
                "masked": PeopleCount.masked + c.masked,
                "unmasked": PeopleCount.unmasked + c.unmasked,
                "unknown": PeopleCount.unknown + c.unknown,
            },
        )
        session.execute(stmt)
    return n


def _sums(scope: Scope, scope_id: int, since: datetime, until: datetime) -> Select[datetime, int, int, int, int]:
    """The sums of the 15-minute rows of one camera, site or region in [since, until), to be grouped."""
    stmt = select(
        PeopleCount.bucket_start, func.sum(PeopleCount.people), func.sum(PeopleCount.masked),
        func.sum(PeopleCount.unmasked), func.sum(PeopleCount.unknown),
    ).where(PeopleCount.bucket_start >= bucket_start(since), PeopleCount.bucket_start < until)
    if scope == "camera":
        return stmt.where(PeopleCount.camera_id == scope_id)
    stmt = stmt.join(Camera, Camera.id == PeopleCount.camera_id)
    if scope == "site":
        return stmt.where(Camera.site_id == scope_id)
    return stmt.join(Site, Site.id == Camera.site_id).where(Site.region_id == scope_id)


def aggregate(
    session: Session, scope: Scope, scope_id: int, interval: Interval, since: datetime, until: datetime
) -> list[tuple[datetime, Counts]]:
    """Counts of one camera, site or region per ``interval`` in [since, until), summed in SQL per 15 minutes.

    Every count, small cells included: for the hub's own use (alerts). Readers get ``published``.
    """
    stmt = _sums(scope, scope_id, since, until)
    rows = session.execute(stmt.group_by(PeopleCount.bucket_start)).all()
    return rollup(((r[0], Counts(int(r[1]), int(r[2]), int(r[3]), int(r[4]))) for r in rows), interval)


def published(
    session: Session, scope: Scope, scope_id: int, interval: Interval, since: datetime, until: datetime, k: int
) -> list[tuple[datetime, Published]]:
    """What readers may see of ``aggregate``: per ``interval``, the sums of the (camera, 15-minute) cells
    with at least ``k`` people; smaller cells are left out everywhere (``compliance.publish``)."""
    stmt = _sums(scope, scope_id, since, until)
    rows = session.execute(stmt.group_by(PeopleCount.camera_id, PeopleCount.bucket_start)).all()
    return publish(((r[0], Counts(int(r[1]), int(r[2]), int(r[3]), int(r[4]))) for r in rows), interval, k)


def total(session: Session, scope: Scope, scope_id: int, since: datetime, until: datetime) -> Counts:
    out = Counts()
    for _, c in aggregate(session, scope, scope_id, Interval.quarter, since, until):
        out = out + c
    return out
