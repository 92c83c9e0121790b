"""The hub's side of segment uploads from site gateways: tus-style resumable uploads, idempotent per segment.

No HTTP here (the router in ``api/routers/edge.py`` maps it): an upload is created for one segment, keyed
by (camera, start) with its SHA-256; bytes are appended at the offset the hub has (which survives any
broken connection: it is the size of the incoming file); when the last byte arrives the digest is checked,
the file is published into the recordings store and indexed, and the upload is marked done in the same
commit as the index row. Only that answer tells the gateway it may delete its copy, so a segment is
stored exactly once whatever is retried.

A gateway may also stream the segment it is still recording (tus ``Upload-Defer-Length``): the upload is
created with only the camera and start, its bytes come fragment by fragment, and the last PATCH gives the
length and the finished segment's metadata (SHA-256 included). While it grows the incoming file has a second
name, the segment's partial path in the recordings store (a hard link), which is where the hub's live edge
(live/edge.py) looks for a camera's segment in progress: a gateway camera's live view then lists parts as
they arrive. The partial name is only a view: the bytes belong to the upload, the digest is checked over
the whole file before anything is published, and start-up repair deletes a gateway camera's partials
instead of publishing them (storage/reconcile.py); the upload resumes from the incoming file.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Row, Table, and_, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from civicam.audit.log import Actor, record
from civicam.auth import site_tokens
from civicam.db.base import utcnow
from civicam.db.models import Camera, Probe, SiteToken
from civicam.db.session import Database
from civicam.domain.segments import SegmentDone, partial_path, segment_path
from civicam.storage.backend import SegmentStore
from civicam.storage.index import add_segment, insert_segment, next_seq
from civicam.storage.models import EdgeUpload, Gap, Segment

MAX_SEGMENT_BYTES = 512 * 1024 * 1024
DEFAULT_EXPIRY_S = 3600.0  # an upload not finished an hour after its creation is abandoned (Settings overrides)
INCOMING = "incoming"  # under the store root; not a segment name, so reconcile and the cleaner leave it alone
EDGE_QUOTA_GAP = "edge_quota"
# The gaps a gateway's recorder opens (the hub's own recorder's reasons, ingest/supervisor.py).
RECORDER_GAPS = frozenset({"stream_lost", "recorder_down", "disk_full"})


# Statements of the receive path, built once: building them per request (SQLAlchemy's coercions) was a tenth
# of the hub's CPU per segment. ``token`` is the gateway's token row id, -1 for none.
# The camera and the live token's id beside it (null when revoked): the outer join keeps the camera's row.
_ADMIT = select(Camera.site_id, Camera.source, Camera.view_only, SiteToken.id).outerjoin(
    SiteToken, and_(SiteToken.id == bindparam("token"), SiteToken.revoked_at.is_(None))).where(
    Camera.id == bindparam("camera"))
# Everything a segment sent in one piece needs before it is stored, in one query: the admission above, whether
# the hub already has an upload or a segment at this (camera, start), and the camera's open gap.
_ARRIVAL = _ADMIT.add_columns(
    select(EdgeUpload.id).where(EdgeUpload.camera_id == bindparam("camera"),
                                EdgeUpload.start == bindparam("start")).scalar_subquery(),
    select(Segment.id).where(Segment.camera_id == bindparam("camera"),
                             Segment.start == bindparam("start")).limit(1).scalar_subquery(),
    select(Gap.start).where(Gap.camera_id == bindparam("camera"), Gap.end.is_(None))
    .order_by(Gap.id.desc()).limit(1).scalar_subquery())
_INSERT_UPLOAD = insert(cast(Table, EdgeUpload.__table__))


class UploadError(Exception):
    """A refused request: ``status`` is the HTTP status, ``code`` a stable word, the message says what to do."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class SegmentMeta:
    """What a gateway says about the segment it uploads (tus ``Upload-Metadata``)."""

    camera_id: int
    start: datetime
    end: datetime
    sha256: str
    seq: int
    frames: int
    keyframes: int
    init_bytes: int
    codec: str
    width: int
    height: int
    session: str

    def as_dict(self) -> dict[str, Any]:
        return {"camera_id": self.camera_id, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "sha256": self.sha256, "seq": self.seq, "frames": self.frames, "keyframes": self.keyframes,
                "init_bytes": self.init_bytes, "codec": self.codec, "width": self.width, "height": self.height,
                "session": self.session}


def parse_metadata(header: str) -> dict[str, str]:
    """tus ``Upload-Metadata``: comma-separated ``key base64value`` pairs. Total: bad input raises UploadError."""
    out: dict[str, str] = {}
    if len(header) > 8192:
        raise UploadError(400, "bad_metadata", "Upload-Metadata is too long.")
    for item in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = item.partition(" ")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise UploadError(400, "bad_metadata", f"Upload-Metadata value of {key!r} is not base64 text.") from None
    return out


def encode_metadata(values: dict[str, Any]) -> str:
    return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in values.items())


def segment_meta(values: dict[str, str]) -> SegmentMeta:
    """Validate the metadata of one segment; every field is required."""
    try:
        start = datetime.fromisoformat(values["start"])
        end = datetime.fromisoformat(values["end"])
        sha = values["sha256"].lower()
        meta = SegmentMeta(int(values["camera_id"]), start, end, sha, int(values["seq"]), int(values["frames"]),
                           int(values["keyframes"]), int(values["init_bytes"]), values["codec"][:32],
                           int(values["width"]), int(values["height"]), values["session"][:32])
    except KeyError as exc:
        raise UploadError(400, "bad_metadata", f"Upload-Metadata lacks {exc.args[0]!r}.") from None
    except ValueError as exc:
        raise UploadError(400, "bad_metadata", f"Upload-Metadata has a bad value: {exc}.") from None
    if start.tzinfo is None or end.tzinfo is None or not start < end <= start + timedelta(hours=1):
        raise UploadError(400, "bad_metadata", "start and end must be aware times, start < end, under an hour.")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise UploadError(400, "bad_metadata", "sha256 must be 64 hex digits.")
    if meta.seq < 0 or meta.frames < 0 or meta.init_bytes < 0:
        raise UploadError(400, "bad_metadata", "seq, frames and init_bytes must not be negative.")
    return meta


def stream_meta(values: dict[str, str]) -> tuple[int, datetime]:
    """The camera and start of a segment still being recorded (a streamed upload's creation)."""
    try:
        camera_id, start = int(values["camera_id"]), datetime.fromisoformat(values["start"])
    except KeyError as exc:
        raise UploadError(400, "bad_metadata", f"Upload-Metadata lacks {exc.args[0]!r}.") from None
    except ValueError as exc:
        raise UploadError(400, "bad_metadata", f"Upload-Metadata has a bad value: {exc}.") from None
    if start.tzinfo is None:
        raise UploadError(400, "bad_metadata", "start must be an aware time.")
    return camera_id, start


@dataclass(frozen=True)
class Created:
    """The answer to a creation request: continue ``upload_id`` at ``offset``, or it is already stored;
    an unfinished upload is removed with its bytes at ``expires`` (tus ``Upload-Expires``)."""

    upload_id: str
    offset: int
    stored_segment: int | None = None
    expires: datetime | None = None


class UploadState(NamedTuple):
    """Where an upload stands (tus HEAD): the hub's offset, its length, the stored segment once it is."""

    offset: int
    length: int
    stored: int | None
    expires: datetime | None


def _revoked() -> UploadError:
    return UploadError(401, "revoked", "This site token is revoked or unknown; ask the hub's admin for a new "
                       "one (civicam site token SITE --rotate).")


def _check_token(s: Session, token_id: int | None) -> None:
    if token_id is not None and not site_tokens.is_live(s, token_id):
        raise _revoked()


def _incoming(upload_id: str) -> str:
    return f"{INCOMING}/{upload_id}.upload"


DEFERRED = 0  # the length of an upload created with Upload-Defer-Length (a real one is at least 1 byte)


def is_deferred(row: EdgeUpload) -> bool:
    """Whether the upload is a stream whose length and digest are not known yet."""
    return row.length == DEFERRED


@dataclass(frozen=True)
class Final:
    """What the last request of a streamed upload tells: the segment's length and its metadata."""

    length: int
    meta: SegmentMeta


class UploadService:
    """Creates, resumes and completes uploads into the hub's recordings store (``store``) and index."""

    def __init__(self, db: Database, store: SegmentStore, expiry_s: float = DEFAULT_EXPIRY_S,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.store = store
        self.expiry_s = expiry_s
        self._clock = clock
        self._locks_guard = threading.Lock()
        self._busy: set[str] = set()
        # Segments whose creation request is still receiving its body (no row yet): a retry of the same
        # segment waits for it (409 busy) rather than start a second upload beside the bytes arriving.
        self._arriving: set[tuple[int, datetime]] = set()
        self._streamed: dict[str, int] = {}  # bytes of streams' requests not yet added to received_bytes

    # -- cameras ---------------------------------------------------------------------------------------

    def register_camera(self, site_id: int, name: str, view_only: bool, probe: dict[str, Any],
                        token_id: int | None = None) -> dict[str, Any]:
        """The gateway's camera ``name`` at its site, created on first report; stores the probe's verdict.

        The hub gets a label, never the camera's address or credentials: those stay in the gateway's config.
        """
        verdict = probe.get("verdict")
        if verdict not in ("accepted", "rejected"):
            raise UploadError(400, "bad_probe", "probe.verdict must be 'accepted' or 'rejected'.")
        name = name.strip()
        if not 0 < len(name) <= 200:
            raise UploadError(400, "bad_name", "The camera name must be 1-200 characters.")
        actor = Actor(name=f"site:{site_id}", source="gateway", role="site_rep", site_id=site_id)
        with self.db.session() as s:
            _check_token(s, token_id)
            cam = s.execute(select(Camera).where(Camera.site_id == site_id, Camera.name == name)).scalar_one_or_none()
            if cam is not None and cam.source != "edge":
                raise UploadError(409, "name_taken", f"Camera '{name}' at site {site_id} is pulled by the hub; "
                                  "give the gateway's camera another name.")
            if cam is None:
                cam = Camera(site_id=site_id, name=name, url=f"edge://site{site_id}/{name}", source="edge",
                             status="pending", view_only=view_only)
                s.add(cam)
                s.flush()
                record(s, actor, "camera.create", "camera", cam.id,
                       {"name": name, "site_id": site_id, "source": "edge", "view_only": view_only})
            old = cam.status
            if cam.status != "disabled":
                cam.status = verdict
            cam.view_only = view_only
            cam.probed_at = utcnow()
            raw_measured, raw_reasons = probe.get("measured"), probe.get("reasons")
            measured: dict[str, Any] = raw_measured if isinstance(raw_measured, dict) else {}
            reasons: list[Any] = raw_reasons if isinstance(raw_reasons, list) else []
            s.add(Probe(camera_id=cam.id, verdict=verdict, measured=measured, reasons=reasons))
            record(s, actor, "camera.probe", "camera", cam.id,
                   {"verdict": verdict, "from": old, "by": "gateway",
                    "reasons": [r.get("code") for r in reasons if isinstance(r, dict)]})
            return {"id": cam.id, "status": cam.status, "view_only": cam.view_only, "next_seq": next_seq(s, cam.id)}

    def _admit(self, s: Session, site_id: int, camera_id: int, token_id: int | None) -> None:
        """The token still live (when given) and the camera this site's, sent by a gateway, recorded; else
        UploadError. One query for both: it runs for every segment."""
        row = s.execute(_ADMIT, {"camera": camera_id, "token": -1 if token_id is None else token_id}).first()
        _check_admitted(s, row, site_id, camera_id, token_id)

    # -- uploads ---------------------------------------------------------------------------------------

    def create(self, site_id: int, meta: SegmentMeta, length: int, token_id: int | None = None) -> Created:
        """Create the upload of one segment, or find the one already made for the same (camera, start).

        ``token_id``: the gateway's token row, checked live in this transaction (a revocation holds at once).
        """
        if not 0 < length <= MAX_SEGMENT_BYTES:
            raise UploadError(413, "too_large", f"Upload-Length must be 1..{MAX_SEGMENT_BYTES} bytes.")
        with self._locks_guard:
            if (meta.camera_id, meta.start) in self._arriving:
                raise UploadError(409, "busy", "This segment is being received by another request; retry.")
        with self.db.session() as s:
            self._admit(s, site_id, meta.camera_id, token_id)
            found = self._find(s, meta, length)
            if found is not None:
                return found
            return self._new_upload(s, site_id, meta, length)

    def create_stream(self, site_id: int, camera_id: int, start: datetime, token_id: int | None = None) -> Created:
        """Create the upload of a segment still being recorded (length deferred), or find the one already
        made for the same (camera, start): a stream resumed after a broken connection continues at the
        hub's offset. A segment the hub already has, or receives whole, is a 409 ``conflict``: the gateway
        then delivers it the usual way once it is finished."""
        if start.tzinfo is None:
            raise UploadError(400, "bad_metadata", "start must be an aware time.")
        with self.db.session() as s:
            self._admit(s, site_id, camera_id, token_id)
            row = s.execute(select(EdgeUpload).where(EdgeUpload.camera_id == camera_id,
                                                     EdgeUpload.start == start)).scalar_one_or_none()
            if row is not None:
                if row.status == "done":
                    return Created(row.id, row.length, row.segment_id)
                if not is_deferred(row):
                    raise UploadError(409, "conflict", "This segment is already being uploaded whole; finish "
                                      "that upload.")
                offset = self._offset(row.id)
                row.resumes += int(offset > 0)  # the stream continues after a broken connection
                # Named again: a hub restarted meanwhile dropped the live name (storage/reconcile.py).
                self._link_live(camera_id, start, self.store.local_path(_incoming(row.id)))
                return Created(row.id, offset, expires=self._expires(row))
            if s.execute(select(Segment.id).where(Segment.camera_id == camera_id,
                                                  Segment.start == start)).first() is not None:
                raise UploadError(409, "conflict", "The hub already holds a segment of this camera at this start.")
            upload = EdgeUpload(id=secrets.token_hex(16), site_id=site_id, camera_id=camera_id, start=start,
                                end=start, sha256="", length=DEFERRED, meta={"stream": True}, status="open",
                                received_bytes=0, resumes=0, created_at=self._clock())
            _insert(s, upload)
            path = self.store.spool(_incoming(upload.id))
            open(path, "ab").close()
            self._link_live(camera_id, start, path)
            return Created(upload.id, 0, expires=self._expires(upload))

    def _link_live(self, camera_id: int, start: datetime, path: str) -> None:
        """Give a streamed upload's file the segment's partial name, where the live edge finds it."""
        try:
            link = self.store.spool(partial_path(camera_id, start))
            if os.path.exists(link):
                if os.path.samefile(link, path):
                    return
                os.unlink(link)  # a stale name (an earlier stream of this start): this one is the upload now
            os.link(path, link)
        except OSError:
            pass  # a store without hard links on its spool: the segment is received all the same, not shown live

    def _unlink_live(self, camera_id: int, start: datetime) -> None:
        try:
            self.store.delete(partial_path(camera_id, start))
        except (OSError, ValueError):
            pass

    def _new_upload(self, s: Session, site_id: int, meta: SegmentMeta, length: int) -> Created:
        upload = EdgeUpload(id=secrets.token_hex(16), site_id=site_id, camera_id=meta.camera_id,
                            start=meta.start, end=meta.end, sha256=meta.sha256, length=length,
                            meta=meta.as_dict(), status="open", received_bytes=0, resumes=0,
                            created_at=self._clock())
        _insert(s, upload)
        self.store.spool(_incoming(upload.id))
        open(self.store.local_path(_incoming(upload.id)), "ab").close()
        return Created(upload.id, 0, expires=self._expires(upload))

    def _find(self, s: Session, meta: SegmentMeta, length: int) -> Created | None:
        row = s.execute(select(EdgeUpload).where(EdgeUpload.camera_id == meta.camera_id,
                                                 EdgeUpload.start == meta.start)).scalar_one_or_none()
        if row is None:
            if s.execute(select(Segment.id).where(Segment.camera_id == meta.camera_id,
                                                  Segment.start == meta.start)).first() is not None:
                raise UploadError(409, "conflict", "The hub already holds a segment of this camera at this start.")
            return None
        if is_deferred(row) and row.status == "open":
            # A stream of this segment broke before its end: the bytes the hub has are the start of the
            # finished segment (the same recorder's file), so the upload continues from them. If they
            # are not, the digest check at the end fails and the segment is sent again from byte 0.
            self._adopt(row, meta, length)
        if row.sha256 != meta.sha256 or row.length != length:
            raise UploadError(409, "conflict", f"A different segment (SHA-256 {row.sha256[:12]}...) of camera "
                              f"{meta.camera_id} at {meta.start.isoformat()} is already on the hub.")
        if row.status == "done":
            return Created(row.id, row.length, row.segment_id)
        if self._expires(row) <= self._clock() and self._remove_upload(s, row):
            # Found after its time: it expired (the sweep had not come yet); the segment starts afresh.
            s.flush()
            return None
        return Created(row.id, self._offset(row.id), expires=self._expires(row))

    def _adopt(self, row: EdgeUpload, meta: SegmentMeta, length: int, via_stream: bool = False) -> None:
        """Give a streamed upload its final length and metadata (in the caller's transaction)."""
        if meta.camera_id != row.camera_id or meta.start != row.start:
            raise UploadError(400, "bad_metadata", "The segment's camera and start are not the upload's.")
        if not 0 < length <= MAX_SEGMENT_BYTES:
            raise UploadError(413, "too_large", f"Upload-Length must be 1..{MAX_SEGMENT_BYTES} bytes.")
        if self._offset(row.id) > length:
            # The hub has more than the finished segment holds: not its start; begin again.
            os.truncate(self.store.local_path(_incoming(row.id)), 0)
            self._unlink_live(row.camera_id, row.start)
        if self._offset(row.id) > 0 and not via_stream:
            row.resumes += 1  # the stream broke; the finished segment continues it: a resumed upload
        row.received_bytes += self._take_streamed(row.id)
        row.length, row.sha256, row.end = length, meta.sha256, meta.end
        row.meta = {**meta.as_dict(), "stream": True}

    def _offset(self, upload_id: str) -> int:
        try:
            return os.path.getsize(self.store.local_path(_incoming(upload_id)))
        except FileNotFoundError:
            return 0

    def status(self, site_id: int, upload_id: str) -> UploadState:
        """Where an upload of this site stands."""
        with self.db.session() as s:
            row = self._get(s, site_id, upload_id)
            if row.status == "done":
                return UploadState(row.length, row.length, row.segment_id, None)
            return UploadState(self._offset(upload_id), row.length, None, self._expires(row))

    def terminate(self, site_id: int, upload_id: str, token_id: int | None = None) -> None:
        """tus termination: remove an unfinished upload with its bytes (a stream whose segment the recorder
        dropped). A stored segment is never removed this way."""
        with self.db.session() as s:
            _check_token(s, token_id)
            row = self._get(s, site_id, upload_id)
            if row.status == "done":
                raise UploadError(409, "stored", "This upload is stored; it cannot be terminated.")
            if not self._remove_upload(s, row):
                raise UploadError(409, "busy", f"Upload {upload_id} is being written by another request; retry.")

    # -- expiry (tus expiration) -----------------------------------------------------------------------

    def _expires(self, row: EdgeUpload) -> datetime:
        return self._expires_at(row.created_at)

    def _expires_at(self, created_at: datetime) -> datetime:
        return created_at + timedelta(seconds=self.expiry_s)

    def _remove_upload(self, s: Session, row: EdgeUpload) -> bool:
        """Delete an unfinished upload's row (in ``s``) and its bytes, unless a request is writing it now."""
        with self._locks_guard:
            if row.id in self._busy:
                return False
            self._busy.add(row.id)
        try:
            s.delete(row)
            try:
                os.unlink(self.store.local_path(_incoming(row.id)))
            except FileNotFoundError:
                pass
            self._unlink_live(row.camera_id, row.start)  # a stream's partial name, if it has one
            self._take_streamed(row.id)
            return True
        finally:
            self._release(row.id)

    def expire(self) -> int:
        """Remove every upload not finished ``expiry_s`` after its creation, with its bytes; returns how many.

        The gateway that comes back to one later is told it is unknown and creates it again from the first
        byte. Files in the incoming folder that no open upload owns (a request that was writing while its
        upload expired) go too once they are that old.
        """
        now = self._clock()
        cutoff = now - timedelta(seconds=self.expiry_s)
        removed = 0
        with self.db.session() as s:
            stale = s.execute(select(EdgeUpload).where(EdgeUpload.status == "open", EdgeUpload.created_at <= cutoff)
                              ).scalars().all()
            for row in stale:
                removed += int(self._remove_upload(s, row))
            live = set(s.execute(select(EdgeUpload.id).where(EdgeUpload.status == "open")).scalars())
        folder = Path(self.store.local_path(_incoming("x"))).parent
        for path in folder.glob("*.upload") if folder.is_dir() else ():
            upload_id = path.name.removesuffix(".upload")
            try:
                old = datetime.fromtimestamp(path.stat().st_mtime, UTC) <= cutoff
            except FileNotFoundError:
                continue
            if upload_id not in live and old:
                with self._locks_guard:
                    if upload_id in self._busy:
                        continue
                path.unlink(missing_ok=True)
        return removed

    def _get(self, s: Session, site_id: int, upload_id: str) -> EdgeUpload:
        row = s.get(EdgeUpload, upload_id) if len(upload_id) == 32 else None
        if row is None or row.site_id != site_id:
            raise UploadError(404, "unknown_upload", f"Upload {upload_id} not found; create it again.")
        return row

    def appender(self, site_id: int, upload_id: str, offset: int, token_id: int | None = None,
                 final: Final | None = None) -> Appender:
        """Start writing at ``offset`` (which must be the hub's); one writer per upload at a time.

        ``final``: the request of a streamed upload that ends it (tus: the first PATCH with Upload-Length);
        the length and metadata are fixed before its bytes are written. A stream's other requests have no
        length: they may only append, up to the largest segment, and never complete it.
        """
        with self._locks_guard:
            if upload_id in self._busy:
                raise UploadError(409, "busy", f"Upload {upload_id} is being written by another request; retry.")
            self._busy.add(upload_id)
        try:
            with self.db.session() as s:
                row = self._get(s, site_id, upload_id)
                done = row.segment_id if row.status == "done" else None
                if final is not None and done is None:
                    if not is_deferred(row) and (row.length, row.sha256) != (final.length, final.meta.sha256):
                        raise UploadError(409, "conflict", "Upload-Length or the segment's SHA-256 differ from "
                                          "what this upload was given before.")
                    if is_deferred(row):
                        _check_token(s, token_id)
                        self._adopt(row, final.meta, final.length, via_stream=True)
                length = row.length
                expires = self._expires(row)
                stream = bool(row.meta.get("stream"))
            current = length if done is not None else self._offset(upload_id)
            if offset != current:
                raise UploadError(409, "offset_mismatch", f"Upload-Offset {offset} is not the hub's offset "
                                  f"{current}; ask with HEAD and continue there.")
            return Appender(self, site_id, upload_id, offset, length, done, expires, token_id, stream)
        except BaseException:
            self._release(upload_id)
            raise

    def incoming(self, meta: SegmentMeta, length: int) -> Incoming:
        """A file for the body of a creation request (tus creation-with-upload), written as it arrives."""
        if not 0 < length <= MAX_SEGMENT_BYTES:
            raise UploadError(413, "too_large", f"Upload-Length must be 1..{MAX_SEGMENT_BYTES} bytes.")
        key = (meta.camera_id, meta.start)
        with self._locks_guard:
            if key in self._arriving:
                raise UploadError(409, "busy", "This segment is being received by another request; retry.")
            self._arriving.add(key)
        try:
            return Incoming(self.store, length, lambda: self._arrived(key))
        except BaseException:
            self._arrived(key)
            raise

    def _arrived(self, key: tuple[int, datetime]) -> None:
        with self._locks_guard:
            self._arriving.discard(key)

    def receive(self, site_id: int, meta: SegmentMeta, length: int, body: Incoming,
                token_id: int | None = None) -> tuple[Created, int, int | None]:
        """Create (or find) the upload whose first bytes (all of them, usually) came with the creation request
        and are in ``body``: the created (or found) upload, the hub's offset after it, and the stored segment
        once complete.

        A body for an upload the hub already has (bytes of, or stored) is not used: the offset says where to
        go on. A new one costs one transaction: the upload row, the bytes (made durable before the commit),
        and, when they are the whole segment, its digest check, the publish and the index row, so a segment
        sent in one piece is one request, one trip to the thread pool and one commit on the hub. A crash
        before the commit leaves no row: the gateway sends the segment again, and the expiry sweep removes
        the orphaned bytes.
        """
        try:
            return self._receive(site_id, meta, length, body, token_id)
        finally:
            body.arrived()

    def _receive(self, site_id: int, meta: SegmentMeta, length: int, body: Incoming,
                 token_id: int | None) -> tuple[Created, int, int | None]:
        with self.db.session() as s:
            conn = s.connection()
            known = self._arrival(s, conn, site_id, meta, token_id)
            if known[4] is not None or known[5] is not None:  # an upload or a segment of it: resume or refuse
                found = self._find(s, meta, length)
                if found is not None:
                    body.discard()
                    return found, found.offset, found.stored_segment
            body.finish()
            try:
                new = self._store_new(conn, site_id, meta, length, body, known)
            except IntegrityError:
                s.rollback()
                raise _raced() from None
            if new.publish is not None:
                self.store.publish(*new.publish)
        body.kept = True
        if new.refusal is not None:
            raise new.refusal
        return new.created, new.offset, new.stored

    def receive_batch(self, site_id: int, arrivals: Sequence[tuple[SegmentMeta, int, Incoming]],
                      token_id: int | None = None) -> list[tuple[Created, int, int | None] | UploadError]:
        """Several segments sent together (ingest/batches.py), each received as ``receive`` would, answered
        in order, in **one** transaction for the usual case: segments the hub has never seen. One session and
        one commit (a WAL write and its fdatasync on SQLite) per batch instead of per segment halved this
        step's CPU (about 1 ms a segment -> 0.5; docs/benchmarks.md "Edge gateways"). Every item's bytes are
        made durable first, before the write lock is taken, and published after every row is in, before the
        commit (a crash between leaves files that start-up repair indexes, as for a single segment).

        Segments the hub already has an upload or a segment of (a resume, a repeat, a conflict) are received
        on their own afterwards (their ORM path may change rows before it refuses). If another hub process
        created one of these uploads at the same moment (a unique key, IntegrityError), nothing of the
        shared transaction stands and nothing was published: each segment is received on its own instead.
        Bodies of refused items that no upload row owns are the caller's to discard."""
        out: list[tuple[Created, int, int | None] | UploadError | None] = [None] * len(arrivals)
        try:
            for _meta, _length, body in arrivals:
                body.finish()
            made: list[int] = []  # items whose rows this transaction wrote
            try:
                with self.db.session() as s:
                    conn = s.connection()
                    publish: list[tuple[str, str]] = []
                    for i, (meta, length, body) in enumerate(arrivals):
                        try:
                            known = self._arrival(s, conn, site_id, meta, token_id)
                        except UploadError as exc:  # refused before anything of it was written
                            out[i] = exc
                            continue
                        if known[4] is not None or known[5] is not None:
                            continue  # on its own, below
                        new = self._store_new(conn, site_id, meta, length, body, known)
                        out[i] = new.refusal or (new.created, new.offset, new.stored)
                        made.append(i)
                        if new.publish is not None:
                            publish.append(new.publish)
                    for rel, final in publish:
                        self.store.publish(rel, final)
            except IntegrityError:
                for i in made:
                    out[i] = None
                made = []
            for i in made:
                arrivals[i][2].kept = True  # committed: the upload row owns these bytes
            for i, (meta, length, body) in enumerate(arrivals):
                if out[i] is None:
                    try:
                        out[i] = self._receive(site_id, meta, length, body, token_id)
                    except UploadError as exc:
                        out[i] = exc
        finally:
            for _meta, _length, body in arrivals:
                body.arrived()
        return [o for o in out if o is not None]

    def _arrival(self, s: Session, conn: Connection, site_id: int, meta: SegmentMeta,
                 token_id: int | None) -> Row[*tuple[Any, ...]]:
        """``_ARRIVAL``'s row for a segment, once the camera and token are admitted (else UploadError)."""
        # One query (_ARRIVAL) and Core INSERTs for the usual case, a new segment: the ORM's unit of work and
        # the statements built per request were most of the hub's CPU per segment. They run on the session's
        # connection (its transaction): Session.execute's ORM dispatch was a sixth of the rest.
        return _check_admitted(s, conn.execute(_ARRIVAL, {"camera": meta.camera_id, "start": meta.start,
                                                          "token": -1 if token_id is None else token_id}
                                               ).first(), site_id, meta.camera_id, token_id)

    def _store_new(self, conn: Connection, site_id: int, meta: SegmentMeta, length: int, body: Incoming,
                   known: Row[*tuple[Any, ...]]) -> _New:
        """The rows of a segment the hub has not seen, its bytes durable in ``body``: the upload row and,
        when they are the whole segment and their digest the announced one, the index row; the publish is
        the caller's, after the rows and before the commit (a crash between leaves a file that start-up
        repair indexes). IntegrityError when another request created this segment's upload first."""
        now = self._clock()
        upload: dict[str, Any] = {
            "id": body.upload_id, "site_id": site_id, "camera_id": meta.camera_id, "start": meta.start,
            "end": meta.end, "sha256": meta.sha256, "length": length, "meta": meta.as_dict(), "status": "open",
            "received_bytes": body.size, "resumes": 0, "segment_id": None, "created_at": now,
            "completed_at": None}
        new = _New(Created(body.upload_id, 0, expires=self._expires_at(now)), body.size)
        if body.size == length:
            digest = body.hexdigest()
            if digest != meta.sha256:
                os.truncate(body.path, 0)  # kept open at offset 0: the gateway sends it again
                new.offset = 0
                new.refusal = _digest_mismatch(digest, meta.sha256)
            else:
                final = segment_path(meta.camera_id, meta.start)
                # A camera's open gap is closed by a segment after it, never by one of the backlog from
                # before it (live segments go first after an outage).
                gap = known[6] if known[6] is not None and known[6] <= meta.start else None
                new.stored = insert_segment(conn, _segment_done(meta.camera_id, meta.start, meta.end, final,
                                                                body.size, upload["meta"]), int(meta.seq), gap)
                new.publish = (body.rel, final)
                upload.update(status="done", segment_id=new.stored, completed_at=utcnow())
        conn.execute(_INSERT_UPLOAD, upload)  # after the index row: one INSERT with its final values
        return new

    def _release(self, upload_id: str) -> None:
        with self._locks_guard:
            self._busy.discard(upload_id)

    def _count_streamed(self, upload_id: str, written: int) -> None:
        with self._locks_guard:
            self._streamed[upload_id] = self._streamed.get(upload_id, 0) + written

    def _take_streamed(self, upload_id: str) -> int:
        """Bytes a stream's requests wrote since the row was last told (counted in memory: see Appender)."""
        with self._locks_guard:
            return self._streamed.pop(upload_id, 0)

    def _complete(self, site_id: int, upload_id: str, written: int = 0, resumed: bool = False,
                  digest: str | None = None, token_id: int | None = None) -> int:
        rel = _incoming(upload_id)
        path = self.store.local_path(rel)
        digest = digest or _sha256_file(path)
        with self.db.session() as s:
            _check_token(s, token_id)
            row = self._get(s, site_id, upload_id)
            row.received_bytes += written + self._take_streamed(upload_id)
            row.resumes += int(resumed)
            if digest != row.sha256:
                # Start over: the bytes on the hub are not the segment; the gateway's copy is kept and resent.
                os.truncate(path, 0)
                self._unlink_live(row.camera_id, row.start)
                raise _digest_mismatch(digest, row.sha256)
            final = segment_path(row.camera_id, row.start)
            size = self.store.publish(rel, final)
            # After the publish, so the live edge finds the segment under one name or the other throughout.
            self._unlink_live(row.camera_id, row.start)
            seg = self._index(s, row.camera_id, row.start, row.end, final, size, row.meta)
            row.status = "done"
            row.segment_id = seg.id
            row.completed_at = utcnow()
            return seg.id

    def _index(self, s: Session, camera_id: int, start: datetime, end: datetime, final: str, size: int,
               meta: dict[str, Any]) -> Segment:
        """The index row of a segment just published (flushed: it has its id), or the one already there."""
        # Published before the commit: a crash between leaves a file that start-up repair indexes; the
        # retried upload then finds the segment by (camera, start) here.
        seg = s.execute(select(Segment).where(Segment.camera_id == camera_id,
                                              Segment.start == start)).scalar_one_or_none()
        if seg is not None:
            return seg
        # A camera's open gap (its gateway lost it) is closed by a segment after it, never by one of the
        # backlog from before it (live segments go first after an outage).
        gap_start = s.execute(select(Gap.start).where(Gap.camera_id == camera_id, Gap.end.is_(None))
                              .order_by(Gap.id.desc()).limit(1)).scalar_one_or_none()
        seg = add_segment(s, _segment_done(camera_id, start, end, final, size, meta), seq=int(meta["seq"]),
                          open_gap_start=gap_start if gap_start is not None and gap_start <= start else None)
        s.flush()
        return seg

    # -- gaps and health -------------------------------------------------------------------------------

    def gap(self, site_id: int, camera_id: int, start: datetime, end: datetime | None, detail: str,
            reason: str = EDGE_QUOTA_GAP, token_id: int | None = None) -> int:
        """A gap the gateway reports: segments it dropped (``edge_quota``, closed; adjacent reports merge), or
        its recorder's own (the camera lost: open while ``end`` is None, then reported again closed). Repeats
        are no-ops, so a gateway that did not see the answer may send it again."""
        if reason != EDGE_QUOTA_GAP:
            return self._recorder_gap(site_id, camera_id, start, end, detail, reason, token_id)
        if end is None or start.tzinfo is None or end.tzinfo is None or not start < end:
            raise UploadError(400, "bad_gap", "A quota gap needs aware start < end.")
        with self.db.session() as s:
            self._admit(s, site_id, camera_id, token_id)
            near = s.execute(select(Gap).where(Gap.camera_id == camera_id, Gap.reason == EDGE_QUOTA_GAP,
                                               Gap.start <= end + timedelta(milliseconds=1),
                                               Gap.end >= start - timedelta(milliseconds=1))
                             .order_by(Gap.start)).scalars().all()
            if near:
                first = near[0]
                first.start = min(first.start, start, *(g.start for g in near))
                first.end = max(end, *(g.end for g in near if g.end is not None))
                for extra in near[1:]:
                    s.delete(extra)
                return first.id
            row = Gap(camera_id=camera_id, start=start, end=end, reason=EDGE_QUOTA_GAP, detail=detail[:1000])
            s.add(row)
            s.flush()
            return row.id

    def _recorder_gap(self, site_id: int, camera_id: int, start: datetime, end: datetime | None, detail: str,
                      reason: str, token_id: int | None) -> int:
        if reason not in RECORDER_GAPS:
            raise UploadError(400, "bad_gap", f"Unknown gap reason {reason!r}; one of: "
                              f"{', '.join(sorted(RECORDER_GAPS | {EDGE_QUOTA_GAP}))}.")
        if start.tzinfo is None or (end is not None and (end.tzinfo is None or end < start)):
            raise UploadError(400, "bad_gap", "A gap needs an aware start, and an aware end not before it.")
        with self.db.session() as s:
            self._admit(s, site_id, camera_id, token_id)
            # The same gap is known by its camera, reason and start (the gateway sends it open, then closed).
            row = s.execute(select(Gap).where(Gap.camera_id == camera_id, Gap.reason == reason,
                                              Gap.start >= start - timedelta(milliseconds=1),
                                              Gap.start <= start + timedelta(milliseconds=1))
                            .order_by(Gap.id).limit(1)).scalar_one_or_none()
            if row is None:
                row = Gap(camera_id=camera_id, start=start, end=end, reason=reason, detail=detail[:1000])
                s.add(row)
                s.flush()
            elif end is not None:
                row.end = end
            return row.id


def _segment_done(camera_id: int, start: datetime, end: datetime, final: str, size: int,
                  meta: dict[str, Any]) -> SegmentDone:
    """The index entry of a segment published at ``final`` from an upload's metadata (``SegmentMeta.as_dict``)."""
    return SegmentDone(camera_id, final, start, end, size, int(meta["frames"]), int(meta["keyframes"]),
                       int(meta["init_bytes"]), str(meta["codec"]), int(meta["width"]), int(meta["height"]),
                       str(meta["session"]))


def _check_admitted(s: Session, row: Row[*tuple[Any, ...]] | None, site_id: int, camera_id: int,
                    token_id: int | None) -> Row[*tuple[Any, ...]]:
    """``row`` (``_ADMIT``'s columns first) if it is this site's gateway camera, recorded, and the token (when
    given) still live; else UploadError."""
    if row is None:
        _check_token(s, token_id)  # an unknown camera with a revoked token: the token is what to fix
    elif token_id is not None and row[3] is None:
        raise _revoked()
    if row is None or row[0] != site_id:
        raise UploadError(403, "wrong_site", f"Camera {camera_id} does not belong to site {site_id}; "
                          "this site's token uploads only its own cameras.")
    if row[1] != "edge":
        raise UploadError(403, "not_edge", f"Camera {camera_id} is pulled by the hub, not sent by a gateway.")
    if row[2]:
        raise UploadError(403, "view_only", f"Camera {camera_id} is view-only: it is never recorded.")
    return row


def _insert(s: Session, upload: EdgeUpload) -> None:
    """The new upload's row, flushed; 409 busy when another request created one for the segment first."""
    s.add(upload)
    try:
        s.flush()
    except IntegrityError:
        s.rollback()
        raise _raced() from None


@dataclass
class _New:
    """A new segment's upload as ``_store_new`` left it: the answer, and the publish still to do."""

    created: Created
    offset: int
    stored: int | None = None
    refusal: UploadError | None = None
    publish: tuple[str, str] | None = None  # (incoming, final) in the store


def _raced() -> UploadError:
    return UploadError(409, "busy", "Another upload of this segment was created at the same moment; retry.")


def _digest_mismatch(got: str, announced: str) -> UploadError:
    return UploadError(460, "digest_mismatch", f"SHA-256 of the received bytes is {got}, not {announced} as "
                       "announced; nothing was stored, send the segment again.")


class Incoming:
    """The body of a creation request, written to its upload's file as it arrives and hashed on the way;
    the upload's row is made once it is all in (``UploadService.receive``). ``discard`` removes the file
    unless an upload row owns it (``kept``)."""

    def __init__(self, store: SegmentStore, length: int, arrived: Callable[[], None] = lambda: None) -> None:
        self.arrived = arrived  # the request is over (its row made, or not): a retry may come in
        self.upload_id = secrets.token_hex(16)
        self.rel = _incoming(self.upload_id)
        self.path = store.spool(self.rel)
        self.length = length
        self.size = 0
        self.kept = False
        self._hash = hashlib.sha256()
        self._fh = open(self.path, "wb")  # noqa: SIM115  closed by finish or discard

    def write(self, chunk: bytes | memoryview) -> None:
        if self.size + len(chunk) > self.length:
            raise UploadError(400, "too_long", "The body runs past Upload-Length.")
        self._fh.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        """Make the bytes durable (before the row that tells the gateway they are here is committed)."""
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        self.arrived()
        if self.kept:
            return
        self._fh.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class Appender:
    """Bytes of one PATCH going to the incoming file; ``close`` keeps what came (a broken connection included)."""

    def __init__(self, svc: UploadService, site_id: int, upload_id: str, offset: int, length: int,
                 done: int | None, expires: datetime | None = None, token_id: int | None = None,
                 stream: bool = False) -> None:
        self._svc = svc
        self._token_id = token_id
        self.expires = expires
        self._site_id = site_id
        self.upload_id = upload_id
        self.offset = offset
        self.deferred = length == DEFERRED  # a stream's request: append only, never complete
        self.stream = stream  # a streamed upload's requests continue at offsets > 0 without being resumes
        self.length = MAX_SEGMENT_BYTES if self.deferred else length
        self.stored: int | None = done
        self._written = 0
        self._hash = hashlib.sha256() if offset == 0 else None
        self._fh = open(svc.store.local_path(_incoming(upload_id)), "ab") if done is None else None

    def write(self, chunk: bytes) -> None:
        if self._fh is None:
            return  # already stored: the bytes are the ones the hub has; nothing to write
        if self.offset + self._written + len(chunk) > self.length:
            raise UploadError(400, "too_long", "The body runs past Upload-Length.")
        self._fh.write(chunk)
        if self._hash is not None:
            self._hash.update(chunk)
        self._written += len(chunk)

    def close(self) -> tuple[int, int | None]:
        """Make the bytes durable and, when the upload is complete, verify, store and index it."""
        try:
            if self._fh is None:
                return self.length, self.stored
            if self.deferred:
                # A stream's fragment: no fsync and no transaction (two a second per camera otherwise). The
                # gateway keeps its copy until the hub has checked the whole file's digest and stored it,
                # which the last request makes durable; a crash before loses nothing that is not resent.
                self._fh.close()
                self._svc._count_streamed(self.upload_id, self._written)
                return self.offset + self._written, None
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            new_offset = self.offset + self._written
            resumed = self.offset > 0 and self._written > 0 and not self.stream
            if new_offset < self.length or self.deferred:
                with self._svc.db.session() as s:
                    row = self._svc._get(s, self._site_id, self.upload_id)
                    row.received_bytes += self._written
                    row.resumes += int(resumed)
                return new_offset, None
            # One transaction for the byte count, the index row and "done"; the digest was taken on the way
            # when the whole segment came in this request.
            digest = self._hash.hexdigest() if self._hash is not None else None
            return self.length, self._svc._complete(self._site_id, self.upload_id, self._written, resumed, digest,
                                                    self._token_id)
        finally:
            if self._fh is not None and not self._fh.closed:
                self._fh.close()
            self._svc._release(self.upload_id)


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
