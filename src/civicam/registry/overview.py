"""Aggregate queries behind the dashboard's overview: cameras by status per region and per site.

Grouped SQL, one query per table of the page, scoped like every registry read (a site representative
counts only their own site). Kept here, below the web layer, so pages only render what these return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from civicam.audit.log import Actor
from civicam.db.models import Camera, Region, Site
from civicam.domain.roles import Role
from civicam.registry.service import CAMERA_STATUSES

STATUS_KEYS = ("total", *CAMERA_STATUSES)


def _status_counts() -> list[Any]:
    return [func.count(Camera.id)] + [
        func.coalesce(func.sum(case((Camera.status == st, 1), else_=0)), 0) for st in CAMERA_STATUSES
    ]


def region_counts(session: Session, actor: Actor) -> dict[int, tuple[int, dict[str, int]]]:
    """Per region: (number of sites, cameras by status), in one grouped query."""
    stmt = select(Region.id, func.count(func.distinct(Site.id)), *_status_counts()) \
        .select_from(Region).join(Site, Site.region_id == Region.id, isouter=True) \
        .join(Camera, Camera.site_id == Site.id, isouter=True).group_by(Region.id)
    if actor.role == Role.site_rep:
        stmt = stmt.where(Site.id == actor.site_id)
    return {row[0]: (int(row[1]), dict(zip(STATUS_KEYS, map(int, row[2:]), strict=True)))
            for row in session.execute(stmt)}


def _sites(actor: Actor, region_id: int | None, q: str | None) -> Select[Site, str]:
    stmt = select(Site, Region.name).join(Region, Region.id == Site.region_id)
    if actor.role == Role.site_rep:
        stmt = stmt.where(Site.id == actor.site_id)
    if region_id is not None:
        stmt = stmt.where(Site.region_id == region_id)
    if q:
        stmt = stmt.where(Site.name.ilike(f"%{q}%") | Region.name.ilike(f"%{q}%") |
                          Site.id.in_(select(Camera.site_id).where(Camera.name.ilike(f"%{q}%"))))
    return stmt


def count_sites(session: Session, actor: Actor, region_id: int | None, q: str | None) -> int:
    """How many sites match the filter (by region; by site, region or camera name)."""
    stmt = _sites(actor, region_id, q)
    return int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())


def site_page(session: Session, actor: Actor, region_id: int | None, q: str | None, offset: int,
              limit: int) -> Sequence[tuple[Site, str]]:
    """One page of matching sites with their region's name, ordered by region then site name."""
    stmt = _sites(actor, region_id, q).order_by(Region.name, Site.name).offset(offset).limit(limit)
    return [(site, name) for site, name in session.execute(stmt).all()]


def site_counts(session: Session, site_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per site: cameras by status (``total`` and each of ``CAMERA_STATUSES``)."""
    stmt = select(Camera.site_id, *_status_counts()).where(Camera.site_id.in_(list(site_ids))) \
        .group_by(Camera.site_id)
    return {row[0]: dict(zip(STATUS_KEYS, map(int, row[1:]), strict=True)) for row in session.execute(stmt)}


def camera_sites(session: Session, camera_ids: Iterable[int]) -> dict[int, int]:
    """Camera id -> site id for the given cameras."""
    ids = list(camera_ids)
    if not ids:
        return {}
    return {int(c): int(s) for c, s in session.execute(select(Camera.id, Camera.site_id)
                                                       .where(Camera.id.in_(ids))).all()}


def site_names(session: Session, site_ids: Iterable[int]) -> dict[int, str]:
    return {int(i): n for i, n in session.execute(select(Site.id, Site.name).where(Site.id.in_(set(site_ids))))
            .all()}
