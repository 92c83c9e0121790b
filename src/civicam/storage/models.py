"""Tables of the recording feature: segments, gaps, holds, retention rules and exports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from civicam.db.base import Base, UTCDateTime, utcnow


class Segment(Base):
    """One published fMP4 segment on disk; the file name encodes camera and start too."""

    __tablename__ = "recording_segments"
    # (camera, start) serves playback and expiry per camera; start alone the quota's "oldest first".
    # On PostgreSQL the table is partitioned by day of ``start`` (migration 0008, storage/partitions.py),
    # which needs the start in every unique key: the path (which encodes the start) is unique with it.
    __table_args__ = (Index("ix_recording_segments_camera_start", "camera_id", "start"),
                      Index("ix_recording_segments_start", "start"),
                      UniqueConstraint("path", "start", name="uq_recording_segments_path"))

    # 64-bit: a city writes billions of rows a day. SQLite's rowid is 64-bit already and only an
    # INTEGER primary key is its rowid.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    # Per-camera running number: the HLS media sequence, stable when older segments are deleted.
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    path: Mapped[str] = mapped_column(String(200))
    bytes: Mapped[int] = mapped_column(BigInteger)
    keyframes: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer, default=0)
    # Length of the ftyp+moov header: HLS serves it as the init section and the rest as the media segment.
    init_bytes: Mapped[int] = mapped_column(Integer, default=0)
    codec: Mapped[str] = mapped_column(String(32), default="")
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    # Segments of one connection share a media timeline; a new session starts a new one (HLS discontinuity).
    session: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Gap(Base):
    """A stretch of time with no recording for one camera, and why; ``end`` is null while it lasts."""

    __tablename__ = "recording_gaps"
    __table_args__ = (Index("ix_recording_gaps_camera_start", "camera_id", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class Hold(Base):
    """An interval never deleted by retention: an evidence hold (with a reason) or an export in progress."""

    __tablename__ = "recording_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))  # "evidence" or "export"
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class RetentionRule(Base):
    """Maximum age of recordings for one camera, site or region."""

    __tablename__ = "retention_rules"
    __table_args__ = (UniqueConstraint("scope", "scope_id", name="uq_retention_rules_scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[int] = mapped_column(Integer)
    max_age_s: Mapped[int] = mapped_column(BigInteger)


class Export(Base):
    """One exported clip: who asked, why, and where the file is."""

    __tablename__ = "recording_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, done, failed
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    first_frame: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    unblurred: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EdgeUpload(Base):
    """One segment a site gateway is uploading (resumable): its key, digest, and whether it is stored.

    (camera, start) is unique: a retried or duplicated upload of the same segment finds this row, so a
    segment is stored once whatever the gateway or the network does.
    """

    __tablename__ = "edge_uploads"
    __table_args__ = (UniqueConstraint("camera_id", "start", name="uq_edge_uploads_camera_start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    sha256: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(8), default="open")  # open, done
    # Bytes the hub received for it in all, and how often it continued at an offset > 0: the resume oracle.
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    resumes: Mapped[int] = mapped_column(Integer, default=0)
    segment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
