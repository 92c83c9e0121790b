"""What the HLS endpoints share: the blurred-or-not decision, grants on URLs, and segment bytes (whole, or
the byte ranges low-latency players ask for).

Framework-free: answers are ``Reply`` values and refusals ``Refused`` (civicam.live.answers), which the API
turns into HTTP; objects made once live on a holder the API passes in (its ``app.state``)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from civicam.audit.log import Actor
from civicam.context import Context
from civicam.ingest.service import store_for
from civicam.live import grants
from civicam.live.answers import Refused, Reply
from civicam.live.blurred_live import LiveBlurHub
from civicam.live.edge import open_segment_file, published_rel
from civicam.live.privacy import BlurredCache
from civicam.live.ranges import Unsatisfiable, byte_range
from civicam.live.transform import wants_unblurred
from civicam.shared_state import keep
from civicam.storage.backend import SegmentStore
from civicam.storage.index import latest_detached
from civicam.storage.models import Segment

GRANT_PURPOSE = "unblurred-grant"


def view_grant(ctx: Context, actor: Actor, camera_id: int, unblurred_reason: str | None, kind: str,
               start: datetime, end: datetime) -> str | None:
    """None for the default blurred view; a grant when a permitted user asks for unblurred with a reason,
    covering only this view: its kind (live or playback) and interval (civicam.live.grants)."""
    if unblurred_reason is None:
        return None
    if not actor.view_unblurred or actor.user_id is None:
        raise Refused(403, "Unblurred video needs the view_unblurred permission.")
    if not wants_unblurred(actor, unblurred_reason):
        raise Refused(400, "State a reason to see unblurred video.")
    return grants.issue(ctx.secrets.derived_key(GRANT_PURPOSE), actor.user_id, camera_id, kind, start, end)


def grant_ok(ctx: Context, actor: Actor, camera_id: int, grant: str | None, kind: str, start: datetime,
             end: datetime, whole: bool = False) -> bool:
    """Whether this fetch is unblurred; a grant that does not hold, or does not cover what is fetched, is
    refused rather than quietly blurred."""
    if grant is None:
        return False
    found = grants.read(ctx.secrets.derived_key(GRANT_PURPOSE), grant, actor.user_id, camera_id) \
        if actor.view_unblurred and actor.user_id is not None else None
    if found is None:
        raise Refused(403, "This unblurred view has expired or is not yours; start the view again.")
    if not found.covers(kind, start, end, whole):
        raise Refused(403, "This unblurred view does not cover that video; open it with its own reason.")
    return True


def segment_store(holder: object, ctx: Context) -> SegmentStore:
    """The app's segment store, made once: making one walks the whole recordings tree to count its bytes,
    which a player's requests (several a second in low-latency live) must not pay each time."""
    return keep(holder, "segment_store", lambda: store_for(ctx))


def blurred_cache(holder: object, ctx: Context, store: SegmentStore) -> BlurredCache:
    return keep(holder, "blurred_cache", lambda: BlurredCache(ctx.settings.data_dir / "cache" / "blurred", store))


def live_blur_hub(holder: object, ctx: Context, store: SegmentStore) -> LiveBlurHub:
    """The app's blurred live pipelines (live/blurred_live.py), made by the first blurred live playlist;
    the app's lifespan closes them."""

    def first_seq(camera_id: int, start: datetime) -> int:
        # The media sequence number the index gives (or will give) the segment starting at ``start``.
        segs = latest_detached(ctx.db, camera_id, 2)
        same = [s.seq for s in segs if s.start.replace(tzinfo=UTC) == start]
        return same[0] if same else (segs[-1].seq + 1 if segs else 0)

    return keep(holder, "live_blur", lambda: LiveBlurHub(
        store, ctx.settings.data_dir / "cache" / "live-blurred", first_seq,
        log=logging.getLogger("civicam.live.blurred_live"), board=ctx.detections))


def blurred_part_response(hub: LiveBlurHub, camera_id: int, rendition: str, name: str,
                          range_header: str | None) -> Reply:
    """Bytes of a blurred live file by its part URI name; only files the camera's pipeline lists."""
    path = hub.watch(camera_id, rendition).path(name)
    if path is None:
        raise Refused(404, "No such blurred part (the live view moved on).")
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            return _send(fh, 0, size, range_header, "video/mp4", CACHE_UNBLURRED, total_known=False)
    except FileNotFoundError:
        raise Refused(404, "No such blurred part (the live view moved on).") from None


def _send(fh: BinaryIO, base: int, length: int, range_header: str | None, media: str, cache: str,
          total_known: bool = True) -> Reply:
    """Bytes ``[base, base+length)`` of an open file as one resource, or the slice a Range header asks for."""
    try:
        wanted = byte_range(range_header, length)
    except Unsatisfiable:
        return Reply(status_code=416, headers={"Content-Range": f"bytes */{length}"})
    start, stop = wanted if wanted is not None else (0, length)
    data = os.pread(fh.fileno(), stop - start, base + start)
    headers = {"Cache-Control": cache, "Accept-Ranges": "bytes"}
    if wanted is None:
        return Reply(data, media_type=media, headers=headers)
    # A file still being written has no known complete length yet (RFC 9110 §14.4 allows "*").
    total = str(length) if total_known else "*"
    headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{total}"
    return Reply(data, status_code=206, media_type=media, headers=headers)


# Blurred segments never change once published, so players may cache them privately. Unblurred bytes are
# never stored: a browser's cache would keep them past the grant that let them be seen.
CACHE_BLURRED = "private, max-age=86400"
CACHE_UNBLURRED = "no-store"


def segment_response(path: str | Path, init_bytes: int, part: str, range_header: str | None = None,
                     cache: str = CACHE_UNBLURRED) -> Reply:
    """The init section or the media part of a published segment file; a Range applies within that part."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            base, length = (0, init_bytes) if part == "init.mp4" else (init_bytes, max(0, size - init_bytes))
            media = "video/mp4" if part == "init.mp4" else "video/iso.segment"
            return _send(fh, base, length, range_header, media, cache)
    except FileNotFoundError:
        raise Refused(404, "The segment was deleted by retention.") from None


def serve_segment(holder: object, ctx: Context, actor: Actor, store: SegmentStore, seg: Segment, part: str,
                  grant: str | None, rng: str | None, kind: str) -> Reply:
    if grant_ok(ctx, actor, seg.camera_id, grant, kind, seg.start, seg.end):
        return segment_response(store.local_path(seg.path), seg.init_bytes, part, rng, CACHE_UNBLURRED)
    try:
        blurred = blurred_cache(holder, ctx, store).get(seg)
    except FileNotFoundError:
        raise Refused(404, "The segment was deleted by retention.") from None
    return segment_response(blurred.path, blurred.init_bytes, part, rng, CACHE_BLURRED)


def part_response(store: SegmentStore, camera_id: int, name: str, range_header: str | None) -> Reply:
    """Bytes of a segment file by its part URI name: the whole file so far, or the requested range."""
    rel = published_rel(camera_id, name)
    if rel is None:
        raise Refused(404, "No such segment file.")
    with open_segment_file(store, rel) as found:
        if found is None:
            raise Refused(404, "The segment was deleted by retention.")
        fh, growing = found
        size = os.fstat(fh.fileno()).st_size
        # no-store: parts are unblurred, and a full answer of a growing file is only what was written so far.
        return _send(fh, 0, size, range_header, "video/mp4", CACHE_UNBLURRED, total_known=not growing)
