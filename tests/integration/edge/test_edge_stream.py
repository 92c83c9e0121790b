"""A gateway's segment streamed while it is recorded (tus Upload-Defer-Length), on the hub's upload service
with real files and a real database: its fragments are the live edge's parts as they arrive, the whole
file's digest is checked before it is stored, a broken stream is finished by the usual upload from the
hub's offset, a dropped one is terminated, and start-up repair never indexes half a gateway segment.

Oracles: the bytes the test wrote (the gateway's file), hashlib over them, the live edge read from disk."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from civicam.context import Context
from civicam.domain.segments import partial_path, segment_path
from civicam.ingest import fmp4
from civicam.ingest.service import store_for
from civicam.ingest.uploads import Final, UploadError, UploadService, segment_meta
from civicam.live.edge import LiveState, add_edge
from civicam.storage.models import EdgeUpload, Segment
from civicam.storage.reconcile import reconcile
from support.sites import two_sites as sites

SPS = bytes.fromhex("6764002aacd940780227e5c04400000303ec0000ea6038a0d0b2c0")
PPS = bytes.fromhex("68ebe3cb22c0")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def meta_for(cam: int, body: bytes) -> dict[str, str]:
    return {"camera_id": str(cam), "start": T0.isoformat(), "end": (T0 + timedelta(seconds=3)).isoformat(),
            "sha256": hashlib.sha256(body).hexdigest(), "seq": "1", "frames": "72", "keyframes": "3",
            "init_bytes": "10", "codec": "h264", "width": "1280", "height": "720", "session": "s"}


def segment_bytes(fragments: int) -> tuple[bytes, list[int]]:
    """An fMP4 segment as the recorder writes it, and the offsets where its init section and each
    fragment end (the points a gateway streams at)."""
    init, _ = fmp4.init_segment("h264", {7: SPS, 8: PPS})
    ends, data = [len(init)], bytearray(init)
    for n in range(fragments):
        data += fmp4.fragment_header(n + 1, n * 45000, [400] * 12, [3750] * 12, n % 2 == 0) + os.urandom(4800)
        ends.append(len(data))
    return bytes(data), ends


def previous(ctx: Context, svc: UploadService, site: int, cam: int) -> Segment:
    """A finished segment before T0, uploaded whole: the live edge looks for the partial where it ends."""
    body, _ = segment_bytes(2)
    meta = meta_for(cam, body)
    meta.update(start=(T0 - timedelta(seconds=2)).isoformat(), end=T0.isoformat(), seq="0")
    m = segment_meta(meta)
    w = svc.appender(site, svc.create(site, m, len(body)).upload_id, 0)
    w.write(body)
    _, stored = w.close()
    with ctx.db.session() as s:
        seg = s.get(Segment, stored)
        assert seg is not None
        s.expunge(seg)
        return seg


def append(svc: UploadService, site: int, upload: str, offset: int, data: bytes,
           final: Final | None = None) -> tuple[int, int | None]:
    w = svc.appender(site, upload, offset, final=final)
    w.write(data)
    return w.close()


def test_streamed_segment_is_live_by_parts_then_stored_once(ctx: Context) -> None:
    site, other = sites(ctx)
    store = store_for(ctx)
    svc = UploadService(ctx.db, store)
    cam = svc.register_camera(site, "Door", False, {"verdict": "accepted"})["id"]
    last = previous(ctx, svc, site, cam)
    body, ends = segment_bytes(6)

    with pytest.raises(UploadError) as wrong:
        svc.create_stream(other, cam, T0)
    assert wrong.value.code == "wrong_site"
    up = svc.create_stream(site, cam, T0)
    assert up.offset == 0 and svc.status(site, up.upload_id).length == 0  # deferred: no length yet
    offset = 0
    listed: list[int] = []
    for end in ends[:4]:  # the init section, then three fragments, one request each
        offset, stored = append(svc, site, up.upload_id, offset, body[offset:end])
        assert stored is None
        state = LiveState([last])
        add_edge(store, cam, last, state, T0 + timedelta(seconds=1))
        assert state.edge is not None and state.edge.start == T0 and state.watch is not None
        listed.append(len(state.edge.parts.parts))
        # Each listed part is the gateway's bytes at its offset, read back through the hub's partial name.
        with open(store.local_path(partial_path(cam, T0)), "rb") as fh:
            for part in state.edge.parts.parts:
                fh.seek(part.offset)
                assert fh.read(part.length) == body[part.offset:part.offset + part.length]
    assert listed == [0, 1, 2, 3]
    with ctx.db.session() as s:
        assert s.execute(select(Segment).where(Segment.camera_id == cam, Segment.start == T0)).first() is None

    # The last request gives the length and the finished segment's metadata: the digest is checked over
    # the whole file, so bytes that were not the segment's (here one streamed byte changed) store nothing.
    meta = segment_meta(meta_for(cam, body))
    with open(store.local_path(partial_path(cam, T0)), "r+b") as fh:
        fh.seek(ends[2] - 1)
        fh.write(bytes([body[ends[2] - 1] ^ 0xFF]))
    with pytest.raises(UploadError) as mismatch:
        append(svc, site, up.upload_id, offset, body[offset:], Final(len(body), meta))
    assert mismatch.value.code == "digest_mismatch"
    assert svc.status(site, up.upload_id).offset == 0, "nothing kept of bytes that are not the segment"
    assert not os.path.exists(store.local_path(partial_path(cam, T0)))
    with ctx.db.session() as s:
        assert s.execute(select(Segment).where(Segment.camera_id == cam, Segment.start == T0)).first() is None
    # The gateway sends it again the usual way (it keeps its copy): found by (camera, start), stored once.
    again = svc.create(site, meta, len(body))
    assert (again.upload_id, again.offset) == (up.upload_id, 0)
    new, stored = append(svc, site, up.upload_id, 0, body)
    assert new == len(body) and stored is not None
    with ctx.db.session() as s:
        segs = s.execute(select(Segment).where(Segment.camera_id == cam, Segment.start == T0)).scalars().all()
        assert [seg.id for seg in segs] == [stored]
    on_hub = Path(store.local_path(segment_path(cam, T0))).read_bytes()
    assert hashlib.sha256(on_hub).hexdigest() == hashlib.sha256(body).hexdigest()


def test_broken_stream_is_finished_from_the_hubs_offset(ctx: Context) -> None:
    site, _ = sites(ctx)
    store = store_for(ctx)
    svc = UploadService(ctx.db, store)
    cam = svc.register_camera(site, "Door", False, {"verdict": "accepted"})["id"]
    body, ends = segment_bytes(5)
    up = svc.create_stream(site, cam, T0)
    offset, _ = append(svc, site, up.upload_id, 0, body[:ends[2]])  # then the gateway was killed
    again = svc.create_stream(site, cam, T0)  # the stream resumed while the segment is still being recorded
    assert (again.upload_id, again.offset) == (up.upload_id, ends[2])

    # The hub restarts: start-up repair drops the partial name (never a half segment indexed) ...
    report = reconcile(ctx.db, store, logging.getLogger("test"))
    assert report.edge_partials == 1 and report.repaired == 0
    with ctx.db.session() as s:
        assert s.execute(select(Segment).where(Segment.camera_id == cam)).first() is None
    # ... and the finished segment, uploaded the usual way, continues where the hub is.
    meta = segment_meta(meta_for(cam, body))
    found = svc.create(site, meta, len(body))
    assert (found.upload_id, found.offset) == (up.upload_id, offset)
    new, stored = append(svc, site, up.upload_id, offset, body[offset:])
    assert new == len(body) and stored is not None
    with ctx.db.session() as s:
        segs = s.execute(select(Segment).where(Segment.camera_id == cam)).scalars().all()
        row = s.get(EdgeUpload, up.upload_id)
        assert row is not None and (row.status, row.received_bytes, row.length) == ("done", len(body), len(body))
    assert [seg.start for seg in segs] == [T0]
    on_hub = Path(store.local_path(segment_path(cam, T0))).read_bytes()
    assert hashlib.sha256(on_hub).hexdigest() == hashlib.sha256(body).hexdigest()


def test_a_dropped_stream_is_terminated_and_a_whole_upload_is_not_streamed(ctx: Context) -> None:
    site, _ = sites(ctx)
    store = store_for(ctx)
    svc = UploadService(ctx.db, store)
    cam = svc.register_camera(site, "Door", False, {"verdict": "accepted"})["id"]
    body, ends = segment_bytes(3)
    up = svc.create_stream(site, cam, T0)
    append(svc, site, up.upload_id, 0, body[:ends[1]])
    svc.terminate(site, up.upload_id)  # the recorder dropped the segment
    assert not os.path.exists(store.local_path(partial_path(cam, T0)))
    with pytest.raises(UploadError) as gone:
        svc.status(site, up.upload_id)
    assert gone.value.code == "unknown_upload"

    meta = segment_meta(meta_for(cam, body))
    whole = svc.create(site, meta, len(body))  # a finished segment being uploaded whole
    with pytest.raises(UploadError) as conflict:
        svc.create_stream(site, cam, meta.start)
    assert conflict.value.code == "conflict"
    _, stored = append(svc, site, whole.upload_id, 0, body)
    assert stored is not None
    with pytest.raises(UploadError) as kept:
        svc.terminate(site, whole.upload_id)
    assert kept.value.code == "stored"


def test_the_streams_last_request_stores_it_and_the_live_name_goes(ctx: Context) -> None:
    site, _ = sites(ctx)
    store = store_for(ctx)
    svc = UploadService(ctx.db, store)
    cam = svc.register_camera(site, "Door", False, {"verdict": "accepted"})["id"]
    body, ends = segment_bytes(4)
    up = svc.create_stream(site, cam, T0)
    offset, _ = append(svc, site, up.upload_id, 0, body[:ends[3]])
    final = Final(len(body), segment_meta(meta_for(cam, body)))
    new, stored = append(svc, site, up.upload_id, offset, body[offset:], final)
    assert new == len(body) and stored is not None
    assert not os.path.exists(store.local_path(partial_path(cam, T0)))
    on_hub = Path(store.local_path(segment_path(cam, T0))).read_bytes()
    assert on_hub == body
    with ctx.db.session() as s:
        row = s.get(EdgeUpload, up.upload_id)
        assert row is not None and (row.status, row.segment_id, row.resumes) == ("done", stored, 0)
    # Streamed again (the gateway did not see the answer): the stored segment is answered, nothing is made.
    assert svc.create_stream(site, cam, T0).stored_segment == stored
