"""Sites with their responsible contact; site representatives see only their own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends

from civicam.api.deps import DbSession, require
from civicam.api.schemas import SiteCreate, SitePublic
from civicam.audit.log import Actor
from civicam.db.models import Site
from civicam.domain.roles import Perm
from civicam.registry import service

router = APIRouter(prefix="/sites", tags=["registry"])
Writer = Annotated[Actor, Depends(require(Perm.registry_write))]
Reader = Annotated[Actor, Depends(require(Perm.registry_read))]


@router.get("", response_model=list[SitePublic])
def list_sites(actor: Reader, session: DbSession, region_id: int | None = None) -> Sequence[Site]:
    return service.list_sites(session, actor, region_id)


@router.post("", response_model=SitePublic, status_code=201)
def create_site(body: SiteCreate, actor: Writer, session: DbSession) -> Site:
    region = service.find_region(session, body.region_id)
    return service.add_site(session, actor, region, body.name, body.contact_name, body.contact_email,
                            body.contact_phone)


@router.get("/{site_id}", response_model=SitePublic)
def get_site(site_id: int, actor: Reader, session: DbSession) -> Site:
    return service.get_site(session, actor, site_id)
