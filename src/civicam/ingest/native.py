"""The native recording engine: many RTSP/TCP cameras per event-loop thread, written as fMP4 fragments.

A fragment is a GOP, cut into parts of at most ``part_target_s`` so the live playlist can list them.
"""

from __future__ import annotations

import logging
import os
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from threading import Event
from typing import Any

from civicam.domain.segments import partial_path, published_path
from civicam.domain.urls import redact
from civicam.ingest import fmp4
from civicam.ingest.recorder import SegmentDone, SessionEvents, record_session
from civicam.ingest.rtp import Depacketizer, FramingError, InterleavedReader
from civicam.ingest.rtsp_client import RtspError, Session, Unsupported, open_session
from civicam.ingest.sources import SourceError, SourceSpec
from civicam.storage.backend import SegmentStore, is_disk_full

LOG = logging.getLogger("civicam.recording.native")
# Sockets are drained once per tick, so one recv returns ~TICK_S of a stream (tens of RTP packets) instead
# of one packet per poll+recv as in FFmpeg's reader. 4 s segments make a 0.1 s delivery delay invisible.
TICK_S = 0.1
RECV_BYTES = 1 << 18
RCVBUF_BYTES = 1 << 20  # room for a few ticks of a high-bitrate camera while the loop is busy elsewhere
WORKERS = 2
# Cameras that this client cannot record (codec, transport): the PyAV engine takes them from then on.
_pyav_only: set[tuple[int, str]] = set()


class SegmentFile:
    """A partial segment written with plain ``os.write``: init section once, then one write per fragment."""

    def __init__(self, store: SegmentStore, camera_id: int, start: datetime, init: bytes, info: fmp4.VideoInfo,
                 session: str) -> None:
        self.store, self.camera_id, self.start, self.session = store, camera_id, start, session
        self.info, self.init_bytes = info, len(init)
        self.partial = partial_path(camera_id, start)
        self.frames = self.keyframes = 0
        self._seq = 0
        self._fd = os.open(store.spool(self.partial), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self._write(init)
        except BaseException:
            self.abort()
            raise

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def write_fragment(self, base: int, sizes: list[int], durations: list[int], pieces: list[bytes],
                       independent: bool) -> None:
        """One moof+mdat, written in one call so a crash leaves whole fragments or a torn tail repair cuts.

        A fragment is a GOP or the part of one that the live playlist lists; ``independent`` when it starts
        on a keyframe.
        """
        self._seq += 1
        head = fmp4.fragment_header(self._seq, base, sizes, durations, independent)
        self._write(b"".join([head, *pieces]))
        self.frames += len(sizes)
        if independent:
            self.keyframes += 1

    def finish(self, end: datetime) -> SegmentDone:
        os.close(self._fd)
        self._fd = -1
        final = published_path(self.partial)
        size = self.store.publish(self.partial, final)
        return SegmentDone(self.camera_id, final, self.start, end, size, self.frames, self.keyframes,
                           self.init_bytes, self.info.codec, self.info.width, self.info.height, self.session)

    def abort(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
        try:
            self.store.delete(self.partial)
        except OSError:
            pass


class Uploads:
    """Publishing off the event loop, for stores whose publish is a network upload (``slow_publish``).

    An S3 upload of a segment takes tens of milliseconds; done on the loop it would hold up every other
    camera of that loop (hundreds) each time. Each camera's segments go to one worker, so they are
    published and indexed in order, and still each only after its upload ended.
    """

    def __init__(self, workers: int = 4) -> None:
        import queue

        self._queues: list[queue.SimpleQueue[Callable[[], None]]] = [queue.SimpleQueue() for _ in range(workers)]
        for i, q in enumerate(self._queues):
            threading.Thread(target=self._run, args=(q,), name=f"rec-upload-{i}", daemon=True).start()

    @staticmethod
    def _run(q: Any) -> None:
        while True:
            q.get()()

    def submit(self, camera_id: int, job: Callable[[], None]) -> None:
        self._queues[camera_id % len(self._queues)].put(job)


_uploads: Uploads | None = None
_uploads_lock = threading.Lock()


def uploads() -> Uploads:
    """The process's upload workers, started on first use."""
    global _uploads
    with _uploads_lock:
        if _uploads is None:
            _uploads = Uploads()
        return _uploads


class Recording:
    """One camera's session on the event loop: access units in, segments out; mirrors ``record_session``."""

    def __init__(self, spec: SourceSpec, rtsp: Session, store: SegmentStore, *, target_s: float, part_s: float,
                 clock: Callable[[], datetime], stop: Event, events: SessionEvents,
                 space_ok: Callable[[], bool]) -> None:
        self.spec, self.rtsp, self.store = spec, rtsp, store
        self.clock, self.stop, self.events, self.space_ok = clock, stop, events, space_ok
        self.codec = rtsp.track.codec
        self.rate = rtsp.track.clock_rate
        self.target_ticks = int(target_s * self.rate)
        self.part_ticks = int(part_s * self.rate)
        self.frame_ticks = self.rate // 25  # until two access units tell the real frame interval
        self.session = secrets.token_hex(8)
        self.depack = Depacketizer(self.codec, self._access_unit, dict(rtsp.track.params))
        self.reader = InterleavedReader(rtsp.channel, self.depack)
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.origin: int | None = None
        self.anchor = clock()
        self.ext = 0  # RTP timestamp unwrapped past 32 bits
        self.last_ts32 = -1
        self.last_ticks = 0
        self.seg_start = 0
        self.paused = False
        self.writer: SegmentFile | None = None
        self.pending_ticks: list[int] = []
        self.pending_sizes: list[int] = []
        self.pending_pieces: list[bytes] = []
        self.pending_key = False  # whether the buffered fragment starts on a keyframe
        self.gop_frames = 0  # frames since the last keyframe
        self.part_frames = 0  # frames per part in this GOP; 0: cut by duration only
        now = time.monotonic()
        self.last_data = now
        self.next_keepalive = now + rtsp.timeout_s / 2
        self.finished = False
        self._in_flight = 0  # segments handed to the upload workers and not yet published
        self._closed = False
        self._flight_lock = threading.Lock()

    def _at(self, ticks: int) -> datetime:
        return self.anchor + timedelta(seconds=ticks / self.rate)

    # -- access units (event-loop thread) --------------------------------------------------------------

    def _access_unit(self, ts32: int, key: bool, pieces: list[bytes], size: int) -> None:
        if self.finished:
            return
        if self.last_ts32 >= 0:
            delta = (ts32 - self.last_ts32) & 0xFFFFFFFF
            self.ext += delta - (1 << 32) if delta >= 1 << 31 else delta
        else:
            self.ext = ts32
        self.last_ts32 = ts32
        if self.origin is None:
            if not key:
                return
            self.origin = self.ext
            self.anchor = self.clock()
        ticks = self.ext - self.origin
        if ticks < self.last_ticks:
            ticks = self.last_ticks  # a camera's clock going back must not break the fragment timeline
        if ticks > self.last_ticks and self.pending_ticks:
            self.frame_ticks = ticks - self.last_ticks
        self.last_ticks = ticks
        if key:
            self._flush(ticks)
            self.pending_key = True
            self.part_frames = self._part_frames(self.gop_frames)
            self.gop_frames = 0
            if self.stop.is_set():
                self._finish(ticks)  # stop on a keyframe so the last segment ends cleanly
                return
            # Half a frame of slack: a keyframe stamped a hair before the target (a live encoder's clock
            # jitter) must not stretch the segment by a whole GOP (6 s instead of 4 for a 2 s GOP).
            if self.writer is not None and ticks - self.seg_start >= self.target_ticks - self.frame_ticks // 2:
                self._publish(self.writer, self._at(ticks))
                self.writer = None
            if self.writer is None and not self._open(ticks):
                return
        elif self.writer is None:
            return
        elif self.stop.is_set() and ticks - self.seg_start > 4 * self.target_ticks:
            self._finish(ticks)  # no keyframe for far too long; do not hold shutdown hostage
            return
        elif self.pending_ticks and (len(self.pending_ticks) == self.part_frames
                                     or ticks - self.pending_ticks[0] + self.frame_ticks > self.part_ticks):
            # Written before it outgrows a live part, so a live player gets this frame's part at once.
            self._flush(ticks)
            self.pending_key = False
        self.gop_frames += 1
        self.pending_ticks.append(ticks)
        self.pending_sizes.append(size)
        self.pending_pieces += pieces

    def _part_frames(self, last_gop: int) -> int:
        """Frames per part for the GOP starting now: the last GOP cut into equal parts within the target.

        LL-HLS wants every part but a segment's last within 85-100% of the part target; cutting by
        duration alone leaves a short tail part per GOP (0.48 s x 4 + 0.08 s for a 2 s GOP at 25 fps).
        Equal parts (5 x 0.4 s) keep them alike, and the playlist announces the longest as the target.
        """
        most = max(1, self.part_ticks // max(1, self.frame_ticks))
        if last_gop <= 0:
            return 0
        count = -(-last_gop // most)
        return -(-last_gop // count)

    def _open(self, ticks: int) -> bool:
        if not self.space_ok():
            if not self.paused:
                self.paused = True
                self.events.paused(self._at(ticks), "storage quota or disk full")
            return False
        try:
            init, info = fmp4.init_segment(self.codec, self.depack.params, self.rate)
        except (KeyError, ValueError):
            return False  # parameter sets not seen yet (neither SDP nor in-band): wait for the next keyframe
        if self.paused:
            self.paused = False
            self.events.resumed()
        self.seg_start = ticks
        try:
            self.writer = SegmentFile(self.store, self.spec.camera_id, self._at(ticks), init, info, self.session)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            self.paused = True
            self.events.paused(self._at(ticks), "disk full (ENOSPC)")
            return False
        return True

    def _flush(self, end_ticks: int) -> None:
        ticks = self.pending_ticks
        if not ticks:
            return
        durations = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        durations.append(max(0, end_ticks - ticks[-1]))
        sizes, pieces = self.pending_sizes, self.pending_pieces
        self.pending_ticks, self.pending_sizes, self.pending_pieces = [], [], []
        if self.writer is None:
            return
        try:
            self.writer.write_fragment(ticks[0], sizes, durations, pieces, self.pending_key)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            self.writer.abort()
            self.writer = None
            self.paused = True
            self.events.paused(self._at(self.seg_start), "disk full (ENOSPC)")

    def _finish(self, end_ticks: int) -> None:
        """Write what is buffered and publish the segment; the session is over."""
        self.finished = True
        self._flush(end_ticks)
        if self.writer is not None:
            writer, self.writer = self.writer, None
            self._publish(writer, self._at(end_ticks))

    def _publish(self, writer: SegmentFile, end: datetime) -> None:
        """Publish, then index: here on the loop for the local disk, on an upload worker for slow stores."""
        if not getattr(self.store, "slow_publish", False):
            self.events.segment(writer.finish(end))
            return
        with self._flight_lock:
            self._in_flight += 1

        def job() -> None:
            try:
                self.events.segment(writer.finish(end))
            except Exception:  # noqa: BLE001  the partial stays in the spool; start-up repair publishes it
                LOG.exception("camera %s: publishing a segment failed; kept for repair", self.spec.camera_id)
            finally:
                with self._flight_lock:
                    self._in_flight -= 1
                    last = self._closed and self._in_flight == 0
                if last:
                    self.done.set()

        uploads().submit(self.spec.camera_id, job)

    def close(self, error: BaseException | None) -> None:
        """End the session (event-loop thread): keep what was recorded, tell the camera, wake the supervisor."""
        if self.done.is_set() or self._closed:
            return
        try:
            if not self.finished:
                # An error mid-segment: keep the fragment in progress too; it follows the rest of its GOP.
                self._finish(self.last_ticks + self.frame_ticks)
        except Exception as exc:  # noqa: BLE001  a failed publish must still end the session
            error = error or exc
            if self.writer is not None:
                self.writer.abort()
                self.writer = None
        try:
            self.rtsp.sock.send(self.rtsp.request("TEARDOWN"))
        except OSError:
            pass  # the camera is gone, or its buffer is full: closing the socket ends the session anyway
        self.rtsp.sock.close()
        self.error = error
        with self._flight_lock:
            self._closed = True
            idle = self._in_flight == 0
        if idle:
            self.done.set()  # else the last upload sets it: the session ends once its segments are indexed

    def feed(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        self.reader.feed(data)


class Engine:
    """A few event-loop threads sharing all native sessions; a session never blocks another one."""

    def __init__(self, workers: int = WORKERS, tick_s: float = TICK_S) -> None:
        self.tick_s = tick_s
        self._lock = threading.Lock()
        self._loops: list[_Loop] = []
        self._workers = workers

    def add(self, rec: Recording) -> None:
        with self._lock:
            if not self._loops:
                self._loops = [_Loop(self.tick_s, i) for i in range(self._workers)]
            loop = min(self._loops, key=lambda lp: lp.load)
            loop.adopt(rec)


class _Loop:
    def __init__(self, tick_s: float, index: int) -> None:
        self.tick_s = tick_s
        self.sel = selectors.DefaultSelector()
        self.inbox: list[Recording] = []
        self.lock = threading.Lock()
        self.load = 0
        self.sessions: set[Recording] = set()
        self.thread = threading.Thread(target=self._run, name=f"rec-native-{index}", daemon=True)
        self.thread.start()

    def adopt(self, rec: Recording) -> None:
        with self.lock:
            self.inbox.append(rec)
            self.load += 1

    def _end(self, rec: Recording, error: BaseException | None) -> None:
        try:
            self.sel.unregister(rec.rtsp.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.sessions.discard(rec)
        with self.lock:
            self.load -= 1
        rec.close(error)

    def _run(self) -> None:
        housekeeping = 0.0
        while True:
            started = time.monotonic()
            if self.inbox:
                with self.lock:
                    new, self.inbox = self.inbox, []
                for rec in new:
                    self._start(rec)
            for key, _mask in self.sel.select(0):
                rec = key.data
                try:
                    while True:
                        data = rec.rtsp.sock.recv(RECV_BYTES)
                        if not data:
                            raise RtspError("the camera closed the connection")
                        rec.feed(data)
                        if len(data) < RECV_BYTES or rec.finished:
                            break
                except (BlockingIOError, InterruptedError):
                    pass
                except (SourceError, FramingError, OSError) as exc:
                    self._end(rec, exc)
                    continue
                except Exception as exc:  # noqa: BLE001  a bug for one camera must not end the others
                    LOG.exception("camera %s: native recorder error", rec.spec.camera_id)
                    self._end(rec, exc)
                    continue
                if rec.finished:
                    self._end(rec, None)
            now = time.monotonic()
            if now >= housekeeping:
                housekeeping = now + 0.5
                for rec in list(self.sessions):
                    try:
                        self._housekeep(rec, now)
                    except Exception as exc:  # noqa: BLE001  the loop must outlive any one camera
                        LOG.exception("camera %s: native housekeeping error", rec.spec.camera_id)
                        self._end(rec, exc)
            time.sleep(max(0.0, self.tick_s - (time.monotonic() - started)))

    def _start(self, rec: Recording) -> None:
        sock = rec.rtsp.sock
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            self.sessions.add(rec)
            self.sel.register(sock, selectors.EVENT_READ, rec)
            if rec.rtsp.initial:
                rec.feed(rec.rtsp.initial)
        except Exception as exc:  # noqa: BLE001
            self._end(rec, exc)

    def _housekeep(self, rec: Recording, now: float) -> None:
        silent = now - rec.last_data
        if silent > rec.spec.timeout_s:
            self._end(rec, RtspError(f"no data for {silent:.0f}s"))
            return
        if rec.stop.is_set() and rec.writer is None and not rec.pending_ticks:
            self._end(rec, None)  # stopping while paused or before the first keyframe: nothing to finish
            return
        if rec.stop.is_set() and rec.origin is not None and silent > 2 * rec.rtsp.timeout_s:
            self._end(rec, None)
            return
        if now >= rec.next_keepalive:
            rec.next_keepalive = now + rec.rtsp.timeout_s / 2
            try:
                rec.rtsp.sock.send(rec.rtsp.request(rec.rtsp.keepalive))
            except BlockingIOError:
                rec.next_keepalive = now + 1.0  # the send buffer is full; try again soon
            except OSError as exc:
                self._end(rec, exc)


_engine: Engine | None = None
_engine_lock = threading.Lock()


def engine() -> Engine:
    """The process-wide engine, started on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
        return _engine


def record_native(
    spec: SourceSpec,
    store: SegmentStore,
    *,
    target_s: float,
    part_s: float,
    clock: Callable[[], datetime],
    stop: Event,
    events: SessionEvents,
    space_ok: Callable[[], bool],
) -> None:
    """Same contract as ``record_session``: record one connection until it ends (raises) or ``stop`` is set.

    The RTSP handshake runs on the caller's (supervisor's) thread, with a deadline per step, so a dead
    camera only ever blocks its own supervisor; streaming then runs on the shared event loop. Cameras the
    client cannot handle are recorded by the PyAV engine instead, never refused.
    """
    key = (spec.camera_id, spec.url)
    if key in _pyav_only or not spec.url.startswith("rtsp://"):
        record_session(spec, store, target_s=target_s, part_s=part_s, clock=clock, stop=stop, events=events,
                       space_ok=space_ok)
        return
    try:
        rtsp = open_session(spec)
    except Unsupported as exc:
        LOG.info("camera %s: native engine cannot record this stream (%s); using PyAV", spec.camera_id,
                 redact(str(exc)))
        _pyav_only.add(key)
        record_session(spec, store, target_s=target_s, part_s=part_s, clock=clock, stop=stop, events=events,
                       space_ok=space_ok)
        return
    rec = Recording(spec, rtsp, store, target_s=target_s, part_s=part_s, clock=clock, stop=stop, events=events,
                    space_ok=space_ok)
    events.connected()
    engine().add(rec)
    rec.done.wait()
    failure = rec.error
    if failure is not None:
        if isinstance(failure, SourceError):
            raise failure
        raise RtspError(redact(f"{type(failure).__name__}: {failure}"))
