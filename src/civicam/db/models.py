"""Tables of the control plane: regions, sites, cameras, probes, users, tokens and the audit chain.

Feature areas keep their own tables in their own modules (recording, analytics) on the same ``Base``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from civicam.db.base import Base, UTCDateTime, utcnow


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Overrides of the global onboarding policy for this region (a partial Policy as JSON).
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sites: Mapped[list[Site]] = relationship(back_populates="region")


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("region_id", "name", name="uq_sites_region_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(320))
    contact_phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region] = relationship(back_populates="sites")
    cameras: Mapped[list[Camera]] = relationship(back_populates="site")


class Camera(Base):
    __tablename__ = "cameras"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_cameras_site_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The URL never holds credentials; they live encrypted in the two columns below.
    url: Mapped[str] = mapped_column(Text)
    username_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    password_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Credentials some cameras take as query parameters (``user=..&pwd=..``), encrypted, out of ``url`` too.
    query_secrets_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    probed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Watched live only: probed and admitted like any camera, never recorded or analysed (relayed on demand).
    view_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # "pull": the hub reads the camera's stream; "edge": the site's gateway records it and uploads segments,
    # and the hub never connects into the site (the URL is then only a label, the credentials stay there).
    source: Mapped[str] = mapped_column(String(8), default="pull")

    site: Mapped[Site] = relationship(back_populates="cameras")

    @property
    def has_credentials(self) -> bool:
        return self.username_enc is not None or self.query_secrets_enc is not None


class SiteToken(Base):
    """A site gateway's enrolment token (only its SHA-256 is stored), and what the gateway last reported."""

    __tablename__ = "site_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_contact: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Probe(Base):
    """Every onboarding probe's report, kept so the decision can be explained later."""

    __tablename__ = "probes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))
    measured: Mapped[dict[str, Any]] = mapped_column(JSON)
    reasons: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    # Only for site representatives: the one site they manage and see.
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    # Unblurred video is a permission of its own, never implied by a role.
    view_unblurred: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Token(Base):
    """A bearer token or browser session; only its SHA-256 is stored."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit log."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """A single row naming the chain's last entry; updating it first serialises appends on every database."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
