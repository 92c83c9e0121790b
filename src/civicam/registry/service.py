"""Registry operations shared by the API and the CLI: validation, scoping, persistence and audit in one place."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from civicam.audit.log import Actor, record
from civicam.db.models import Camera, Probe, Region, Site
from civicam.domain.policy import Policy
from civicam.domain.roles import Role, sees_site
from civicam.domain.urls import InvalidStreamURL, parse_stream_url, with_credentials
from civicam.registry.addresses import AddressNotAllowed, Resolver, check_camera_url, resolve_host
from civicam.registry.secrets import SecretBox

CAMERA_STATUSES = ("pending", "accepted", "rejected", "disabled")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,32}$")


class RegistryError(ValueError):
    """Bad input: the message says what to fix (HTTP 400/409, CLI exit 2)."""


class NotFound(LookupError):
    """The object does not exist, or the actor may not see it (the two are not told apart)."""


class Forbidden(PermissionError):
    """The actor may see the object but not do this to it."""


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > 200:
        raise RegistryError(f"The {what} name must be 1-200 characters.")
    return value


# Regions ---------------------------------------------------------------------------------------------------


def add_region(session: Session, actor: Actor, name: str, policy: dict[str, Any] | None = None) -> Region:
    name = _name(name, "region")
    if policy:
        try:
            Policy().merged(policy)
        except ValueError as exc:
            raise RegistryError(f"Invalid policy override: {exc}") from None
    if session.execute(select(Region).where(Region.name == name)).scalar_one_or_none():
        raise RegistryError(f"Region '{name}' already exists.")
    region = Region(name=name, policy=policy or None)
    session.add(region)
    session.flush()
    record(session, actor, "region.create", "region", region.id, {"name": name, "policy": policy or None})
    return region


def find_region(session: Session, ref: str | int) -> Region:
    """A region by id or by name."""
    region: Region | None = None
    if isinstance(ref, int) or str(ref).isdigit():
        region = session.get(Region, int(ref))
    if region is None:
        region = session.execute(select(Region).where(Region.name == str(ref))).scalar_one_or_none()
    if region is None:
        raise NotFound(f"Region '{ref}' not found.")
    return region


def list_regions(session: Session, actor: Actor) -> Sequence[Region]:
    stmt = select(Region).order_by(Region.name)
    if actor.role == Role.site_rep:
        stmt = stmt.join(Site).where(Site.id == actor.site_id)
    return session.execute(stmt).scalars().all()


def set_region_policy(session: Session, actor: Actor, region: Region, policy: dict[str, Any] | None) -> Region:
    try:
        Policy().merged(policy)
    except ValueError as exc:
        raise RegistryError(f"Invalid policy override: {exc}") from None
    region.policy = policy or None
    record(session, actor, "region.policy", "region", region.id, {"policy": policy or None})
    return region


# Sites -----------------------------------------------------------------------------------------------------


def add_site(
    session: Session,
    actor: Actor,
    region: Region,
    name: str,
    contact_name: str,
    contact_email: str,
    contact_phone: str | None = None,
) -> Site:
    name = _name(name, "site")
    contact_name = _name(contact_name, "contact")
    if not _EMAIL.match(contact_email.strip()):
        raise RegistryError(f"'{contact_email}' is not an email address.")
    if contact_phone is not None and contact_phone.strip() and not _PHONE.match(contact_phone.strip()):
        raise RegistryError(f"'{contact_phone}' is not a phone number.")
    exists = session.execute(select(Site).where(Site.region_id == region.id, Site.name == name)).scalar_one_or_none()
    if exists:
        raise RegistryError(f"Site '{name}' already exists in region '{region.name}'.")
    site = Site(region_id=region.id, name=name, contact_name=contact_name, contact_email=contact_email.strip(),
                contact_phone=(contact_phone or "").strip() or None)
    session.add(site)
    session.flush()
    record(session, actor, "site.create", "site", site.id, {"name": name, "region_id": region.id})
    return site


def get_site(session: Session, actor: Actor, site_id: int) -> Site:
    site = session.get(Site, site_id)
    if site is None or not sees_site(actor.role, actor.site_id, site.id):
        raise NotFound(f"Site {site_id} not found.")
    return site


def list_sites(session: Session, actor: Actor, region_id: int | None = None) -> Sequence[Site]:
    stmt = select(Site).order_by(Site.id)
    if region_id is not None:
        stmt = stmt.where(Site.region_id == region_id)
    if actor.role == Role.site_rep:
        stmt = stmt.where(Site.id == actor.site_id)
    return session.execute(stmt).scalars().all()


# Cameras ---------------------------------------------------------------------------------------------------


def add_camera(
    session: Session,
    actor: Actor,
    secrets: SecretBox,
    site_id: int,
    name: str,
    url: str,
    username: str | None = None,
    password: str | None = None,
    *,
    view_only: bool = False,
    media_dirs: Sequence[Path] = (),
    policy: Policy | None = None,
    resolve: Resolver = resolve_host,
) -> Camera:
    """Register a camera (status pending until probed).

    The URL must pass the address policy (``registry.addresses``): local files only for admins and only
    inside ``media_dirs``; inside the region's ``camera_networks`` when the region (or ``policy``) sets them.
    """
    site = get_site(session, actor, site_id)
    name = _name(name, "camera")
    try:
        parsed = parse_stream_url(url)
    except InvalidStreamURL as exc:
        raise RegistryError(str(exc)) from None
    region = session.get(Region, site.region_id)
    try:
        effective = (policy or Policy()).merged(region.policy if region else None)
        check_camera_url(parsed.url, actor.role, media_dirs, effective, resolve)
    except AddressNotAllowed as exc:
        if exc.code == "local_file_not_allowed" and actor.role != Role.admin:
            raise Forbidden(str(exc)) from None
        raise RegistryError(str(exc)) from None
    # Credentials given as options win over ones embedded in the URL; either way they leave the URL.
    user = username if username is not None else parsed.username
    pw = password if password is not None else parsed.password
    if pw is not None and not user:
        raise RegistryError("A password was given without a username.")
    exists = session.execute(select(Camera).where(Camera.site_id == site.id, Camera.name == name)).scalar_one_or_none()
    if exists:
        raise RegistryError(f"Camera '{name}' already exists at site {site.id}.")
    camera = Camera(site_id=site.id, name=name, url=parsed.url, username_enc=secrets.seal(user),
                    password_enc=secrets.seal(pw), query_secrets_enc=secrets.seal(parsed.query_secrets),
                    status="pending", view_only=view_only)
    session.add(camera)
    try:
        session.flush()
    except IntegrityError:
        raise RegistryError(f"Camera '{name}' already exists at site {site.id}.") from None
    record(session, actor, "camera.create", "camera", camera.id,
           {"name": name, "site_id": site.id, "url": parsed.url, "has_credentials": camera.has_credentials,
            "view_only": view_only})
    return camera


def get_camera(session: Session, actor: Actor, camera_id: int) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None or not sees_site(actor.role, actor.site_id, camera.site_id):
        raise NotFound(f"Camera {camera_id} not found.")
    return camera


def list_cameras(
    session: Session,
    actor: Actor,
    site_id: int | None = None,
    region_id: int | None = None,
    status: str | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[Sequence[Camera], int]:
    """One page of cameras the actor may see, and how many match in all."""
    stmt = select(Camera)
    if site_id is not None:
        stmt = stmt.where(Camera.site_id == site_id)
    if region_id is not None:
        stmt = stmt.join(Site).where(Site.region_id == region_id)
    if status is not None:
        if status not in CAMERA_STATUSES:
            raise RegistryError(f"Unknown status '{status}'; use one of {', '.join(CAMERA_STATUSES)}.")
        stmt = stmt.where(Camera.status == status)
    if search:
        stmt = stmt.where(Camera.name.ilike(f"%{search}%"))
    if actor.role == Role.site_rep:
        stmt = stmt.where(Camera.site_id == actor.site_id)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    page = stmt.order_by(Camera.id).offset(offset)
    if limit is not None:
        page = page.limit(limit)
    return session.execute(page).scalars().all(), total


def visible_camera_ids(session: Session, actor: Actor, ids: Iterable[int]) -> set[int]:
    """The subset of ``ids`` the actor may see (all of them, except for site representatives)."""
    wanted = set(ids)
    if actor.role != Role.site_rep:
        return wanted
    stmt = select(Camera.id).where(Camera.id.in_(wanted), Camera.site_id == actor.site_id)
    return set(session.execute(stmt).scalars())


def set_camera_status(session: Session, actor: Actor, camera: Camera, status: str, why: str = "") -> Camera:
    if status not in ("disabled", "pending"):
        raise RegistryError("Only 'disabled' and 'pending' can be set by hand; probing accepts or rejects.")
    old = camera.status
    camera.status = status
    record(session, actor, "camera.status", "camera", camera.id, {"from": old, "to": status, "why": why})
    return camera


def policy_for(session: Session, default: Policy, camera: Camera) -> Policy:
    site = session.get(Site, camera.site_id)
    region = session.get(Region, site.region_id) if site else None
    return default.merged(region.policy if region else None)


def credentials(secrets: SecretBox, camera: Camera) -> tuple[str | None, str | None]:
    return secrets.open(camera.username_enc), secrets.open(camera.password_enc)


def stream_url(secrets: SecretBox, camera: Camera) -> str:
    """The URL to open the camera with: the stored URL with its query credentials (if any) put back.

    It holds secrets: log and show it only through ``redact``. The username and password stay apart
    (``credentials``).
    """
    return with_credentials(camera.url, None, None, secrets.open(camera.query_secrets_enc))


def latest_probe(session: Session, camera_id: int) -> Probe | None:
    return session.execute(
        select(Probe).where(Probe.camera_id == camera_id).order_by(Probe.id.desc()).limit(1)
    ).scalar_one_or_none()


def latest_probes(session: Session, camera_ids: Iterable[int]) -> dict[int, Probe]:
    """Each camera's newest probe, for a page of cameras in one query (not one per camera)."""
    ids = list(set(camera_ids))
    if not ids:
        return {}
    newest = select(func.max(Probe.id)).where(Probe.camera_id.in_(ids)).group_by(Probe.camera_id)
    return {p.camera_id: p for p in session.execute(select(Probe).where(Probe.id.in_(newest))).scalars()}
