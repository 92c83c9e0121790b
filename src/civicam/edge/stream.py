"""Live view by parts for a gateway camera: the segment being recorded is streamed to the hub as it grows.

While a camera has nothing waiting in the spool, its lane follows the partial file the recorder writes
(the same recorder as the hub's, ``<name>.partial``) and sends each complete fragment (moof+mdat) as soon
as it is on disk: a tus upload created with ``Upload-Defer-Length``, one PATCH per fragment, and a last
PATCH, once the recorder has published the segment and the spool has its SHA-256, with the length and the
segment's metadata. The hub lists the fragments as parts of its live view as they arrive and verifies the
whole file's digest before it stores and indexes it; only its answer lets the spool delete its copy.

If the stream breaks (the hub unreachable, the gateway killed), nothing is lost: the finished segment is in
the spool like any other and goes the resumable way, from the hub's offset (ingest/uploads.py adopts the
streamed bytes, which are the start of the same file; a digest mismatch at the end sends it again whole).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from civicam.domain.segments import parse_segment_path, published_path
from civicam.edge.client import HubClient, HubRefused
from civicam.edge.spool import Spool, Spooled
from civicam.storage.fragments import FragmentIndex, scan_fd

PUBLISH_WAIT_S = 5.0  # after the partial is gone: how long the spool may take to digest the published segment
STALL_S = 10.0  # a partial that has not grown for this long is left (the lane has other work: gap events)


def sendable(index: FragmentIndex) -> int:
    """How many bytes of a growing segment file may go now: through its last complete fragment, the init
    section (ftyp+moov) alone before the first; 0 until the init section is whole."""
    if index.init_length == 0:
        return 0
    if not index.fragments:
        return index.init_length
    last = index.fragments[-1]
    return last.offset + last.length


def _read(fd: int, offset: int, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        block = os.pread(fd, size - len(out), offset + len(out))
        if not block:
            raise OSError(f"the segment file ended at {offset + len(out)} bytes, before {offset + size}")
        out += block
    return bytes(out)


class LiveStreamer:
    """Streams one camera's segment in progress at a time; called from that camera's upload lane."""

    def __init__(self, client: HubClient, spool: Spool, stop: threading.Event, logger: logging.Logger,
                 poll_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._spool = spool
        self._stop = stop
        self._log = logger
        self._poll_s = poll_s
        self._clock = clock
        # Per camera, the partial the hub would not take streamed (it goes the usual way when finished).
        self._refused: dict[int, str] = {}

    def stream(self, hub_id: int, local_id: int) -> Spooled | None:
        """Stream the camera's segment in progress to its end; the segment once the hub stored it (the spool
        copy is deleted), or None: nothing in progress, the recorder dropped it, or it is left to the usual
        path (the hub refused the stream, or the gateway is stopping). A broken connection raises, as any
        upload does (HubUnreachable): the lane backs off and, if the segment is still being recorded then,
        streams it on from the hub's offset."""
        rel = self._spool.in_progress(local_id)
        if rel is None or self._refused.get(local_id) == rel:
            return None
        start = parse_segment_path(rel).start
        path = self._spool.store.local_path(rel)
        try:
            fd = os.open(path, os.O_RDONLY)  # open, it stays readable through the rename that publishes it
        except FileNotFoundError:
            return None
        try:
            return self._follow(hub_id, local_id, rel, start, path, fd)
        finally:
            os.close(fd)

    def _follow(self, hub_id: int, local_id: int, rel: str, start: datetime, path: str, fd: int) -> Spooled | None:
        try:
            up = self._client.stream_create(hub_id, start)
        except HubRefused as exc:
            if exc.status == 401:
                raise  # the token: nothing about this segment
            self._refused[local_id] = rel
            self._log.info("segment %s not streamed (%s); it is uploaded when finished", rel, exc)
            return None
        if up.stored is not None:
            self._refused[local_id] = rel
            return None
        offset = up.offset
        looked, grew = -1, self._clock()
        while True:
            if self._stop.is_set():
                return None  # the recorder finishes the segment; it is uploaded the usual way on the next start
            size = os.fstat(fd).st_size
            if size != looked:  # only a file that grew can hold a new fragment: a stat, not a scan, per look
                looked, grew = size, self._clock()
                end = sendable(scan_fd(fd))
                if end > offset:
                    offset, _ = self._client.stream_append(up.location, offset, _read(fd, offset, end - offset))
                    continue
            if not os.path.exists(path):
                break  # published (or dropped) by the recorder: the file is complete
            if self._clock() - grew > STALL_S:
                # The recorder stopped writing without closing it (its supervisor will): let the lane send
                # its gap events meanwhile; it comes back to this segment from the hub's offset.
                return None
            self._stop.wait(self._poll_s)
        final = published_path(rel)
        if not os.path.exists(self._spool.store.local_path(final)):
            # Dropped by the recorder (the publish is a rename: no partial and no segment means dropped).
            self._client.terminate(up.location)
            return None
        item = self._ready(local_id, final)
        if item is None:
            return None
        if not self._spool.begin(item):
            return None
        try:
            if offset > item.bytes:
                return None  # not the file that was streamed: the usual path sends it again from byte 0
            new, stored = self._client.stream_append(up.location, offset, _read(fd, offset, item.bytes - offset),
                                                     (item.bytes, item, hub_id))
        except HubRefused as exc:
            # A digest mismatch (the hub starts the upload over) or an offset the hub disputes: the
            # finished segment is in the spool; the usual path delivers it from the hub's offset.
            self._log.warning("stream of %s not completed (%s); uploading it the usual way", rel, exc)
            return None
        finally:
            self._spool.end(item)
        if stored is None or new != item.bytes:
            return None
        self._spool.delivered(item)
        return item

    def _ready(self, local_id: int, rel: str) -> Spooled | None:
        """The spool's entry for the segment just published at ``rel`` (the spool digests it first)."""
        deadline = self._clock() + PUBLISH_WAIT_S
        while True:
            item = self._spool.ready(local_id, rel)
            if item is not None:
                return item
            if self._clock() > deadline or self._stop.wait(self._poll_s):
                return None
