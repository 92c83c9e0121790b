"""Regions: list and create; per-region onboarding policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from civicam.api.deps import CurrentActor, DbSession, require
from civicam.api.schemas import RegionCreate, RegionPublic
from civicam.audit.log import Actor
from civicam.db.models import Region
from civicam.domain.roles import Perm
from civicam.registry import service

router = APIRouter(prefix="/regions", tags=["registry"])
Writer = Annotated[Actor, Depends(require(Perm.registry_write))]
Reader = Annotated[Actor, Depends(require(Perm.registry_read))]


@router.get("", response_model=list[RegionPublic])
def list_regions(actor: Reader, session: DbSession) -> Sequence[Region]:
    return service.list_regions(session, actor)


@router.post("", response_model=RegionPublic, status_code=201)
def create_region(body: RegionCreate, actor: Writer, session: DbSession) -> Region:
    return service.add_region(session, actor, body.name, body.policy)


@router.put("/{region_id}/policy", response_model=RegionPublic)
def set_policy(region_id: int, policy: dict[str, Any], actor: Writer, session: DbSession) -> Region:
    return service.set_region_policy(session, actor, service.find_region(session, region_id), policy)


@router.get("/{region_id}", response_model=RegionPublic)
def get_region(region_id: int, actor: CurrentActor, session: DbSession) -> Region:
    regions = {r.id: r for r in service.list_regions(session, actor)}
    if region_id not in regions:
        raise service.NotFound(f"Region {region_id} not found.")
    return regions[region_id]
