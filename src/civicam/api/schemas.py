"""Request and response bodies: ``XCreate`` for input, ``XPublic`` for output; secrets never appear in output."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TokenPublic(_Out):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class LoginIn(_In):
    username: str
    password: str


class RegionCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    policy: dict[str, Any] | None = Field(None, description="Overrides of the global onboarding policy.")


class RegionPublic(_Out):
    id: int
    name: str
    policy: dict[str, Any] | None
    created_at: datetime


class SiteCreate(_In):
    region_id: int
    name: str = Field(min_length=1, max_length=200)
    contact_name: str = Field(min_length=1, max_length=200)
    contact_email: str
    contact_phone: str | None = None


class SitePublic(_Out):
    id: int
    region_id: int
    name: str
    contact_name: str
    contact_email: str
    contact_phone: str | None
    created_at: datetime


class CameraCreate(_In):
    site_id: int
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(description="rtsp://, http(s):// or file:// URL; embedded credentials are moved out of it.")
    username: str | None = None
    password: str | None = Field(None, description="Stored encrypted; never returned.")


class CameraStatusUpdate(_In):
    status: Literal["disabled", "pending"]
    reason: str = ""


class ReasonPublic(_Out):
    code: str
    message: str


class Measured(_Out):
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    codec: str | None = None
    bitrate_kbps: float | None = None
    keyframe_interval_s: float | None = None


class ProbePublic(_Out):
    verdict: Literal["accepted", "rejected"]
    measured: Measured
    reasons: list[ReasonPublic]
    created_at: datetime | None = None


class CameraPublic(_Out):
    id: int
    site_id: int
    name: str
    url: str
    has_credentials: bool
    status: str
    created_at: datetime
    probed_at: datetime | None
    last_probe: ProbePublic | None = None


class CameraPage(_Out):
    items: list[CameraPublic]
    total: int
    offset: int
    limit: int


class ProbeRequest(_In):
    seconds: float | None = Field(None, gt=0, le=60)


class UserCreate(_In):
    username: str
    password: str
    role: Literal["admin", "operator", "site_rep", "auditor"]
    site_id: int | None = None
    view_unblurred: bool = False


class UserPublic(_Out):
    id: int
    username: str
    role: str
    site_id: int | None
    view_unblurred: bool
    is_active: bool
    created_at: datetime


class AuditEventPublic(_Out):
    id: int
    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    source: str
    detail: dict[str, Any]
    hash: str


class AuditVerifyPublic(_Out):
    ok: bool
    entries: int
    problems: list[dict[str, Any]]
