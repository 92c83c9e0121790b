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
from datetime import UTC, datetime, timedelta
from threading import Event
from typing import Any

from civicam.domain.segments import SegmentDone, partial_path, published_path
from civicam.domain.urls import redact
from civicam.ingest import fmp4
from civicam.ingest.clock import WallClock, parse_sender_report
from civicam.ingest.handover import Handover, HeldGops, join_point
from civicam.ingest.recorder import SessionEvents, record_session
from civicam.ingest.reorder import Reorder
from civicam.ingest.rtp import Depacketizer, InterleavedReader
from civicam.ingest.rtsp_client import RtspError, Session, Unsupported, open_session
from civicam.ingest.rtsp_wire import ProtocolError
from civicam.ingest.segmenter import Segmenter
from civicam.ingest.sources import SourceError, SourceSpec
from civicam.storage.backend import SegmentStore, is_disk_full

LOG = logging.getLogger("civicam.recording.native")
# Sockets are drained once per tick, so one recv returns ~TICK_S of a stream (tens of RTP packets) instead
# of one packet per poll+recv as in FFmpeg's reader. 4 s segments make a 0.1 s delivery delay invisible.
TICK_S = 0.1
RECV_BYTES = 1 << 18
RCVBUF_BYTES = 1 << 20  # room for a few ticks of a high-bitrate camera while the loop is busy elsewhere
WORKERS = 2
# A loop thread that has not finished an iteration for this long is stuck (a bug, a parser that does not
# return): its cameras are ended with a clear reason and a fresh thread takes the loop's place. Far above
# any honest iteration (one tick plus a few ms per camera), even on a loaded box.
STALL_S = 15.0
# One fragment's buffered samples: a peer whose timestamps never advance must not grow it without bound.
MAX_FRAGMENT_FRAMES = 1000
MAX_FRAGMENT_BYTES = 64 * 1024 * 1024
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
                       independent: bool, offsets: list[int] | None = None) -> None:
        """One moof+mdat, written in one call so a crash leaves whole fragments or a torn tail repair cuts.

        A fragment is a GOP or the part of one that the live playlist lists; ``independent`` when it starts
        on a keyframe.
        """
        self._seq += 1
        head = fmp4.fragment_header(self._seq, base, sizes, durations, independent, offsets)
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
    """One camera's session on the event loop: access units in, segments out.

    Cut by the same ``Segmenter`` as ``record_session``; B-frame decode times from ``Reorder``; index times
    from ``WallClock``.
    """

    def __init__(self, spec: SourceSpec, rtsp: Session, store: SegmentStore, *, target_s: float, part_s: float,
                 clock: Callable[[], datetime], stop: Event, events: SessionEvents,
                 space_ok: Callable[[], bool], hold: Handover | None = None) -> None:
        self.spec, self.rtsp, self.store = spec, rtsp, store
        self.clock, self.stop, self.events, self.space_ok = clock, stop, events, space_ok
        self.codec = rtsp.track.codec
        self.rate = rtsp.track.clock_rate
        # The cutting rules, shared with the PyAV engine; 25 fps until two access units tell the interval.
        self.seg = Segmenter(int(target_s * self.rate), self.rate // 25)
        self.part_ticks = int(part_s * self.rate)
        self.session = secrets.token_hex(8)
        self.depack = Depacketizer(self.codec, self._access_unit, dict(rtsp.track.params))
        self.reader = InterleavedReader(rtsp.channel, self.depack, self._rtcp)
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.origin: int | None = None
        self.anchor = clock()
        self.wall: WallClock | None = None  # from the first keyframe on
        self.ext = 0  # RTP timestamp unwrapped past 32 bits
        self.last_ts32 = -1
        self.paused = False
        self.writer: SegmentFile | None = None
        self.pending_ticks: list[int] = []
        self.pending_offsets: list[int] = []  # composition offsets (PTS - DTS), non-zero with B-frames only
        self.reorder: Reorder[tuple[bool, list[bytes], int]] = Reorder(0)
        self.pending_sizes: list[int] = []
        self.pending_pieces: list[bytes] = []
        self.pending_bytes = 0
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
        # A handover's new recorder: units are held, not written, until the old recorder has stopped.
        self.hold = hold if hold is not None and not hold.released else None
        self.held: HeldGops[tuple[int, int, bool, list[bytes], int]] = HeldGops(
            int((hold.keep_s if hold is not None else 0) * self.rate))

    def _at(self, ticks: int) -> datetime:
        if self.wall is None:
            return self.anchor + timedelta(seconds=ticks / self.rate)
        return datetime.fromtimestamp(self.wall.at(ticks), UTC)

    def _rtcp(self, packet: bytes) -> None:
        """An RTCP packet from the camera: a sender report steers index times (ingest/clock.py)."""
        report = parse_sender_report(packet)
        if report is None or self.wall is None or self.origin is None or self.last_ts32 < 0:
            return
        delta = (report[0] - self.last_ts32) & 0xFFFFFFFF
        ext = self.ext + (delta - (1 << 32) if delta >= 1 << 31 else delta)
        self.wall.sender_report(ext - self.origin, report[1])

    # -- access units (event-loop thread) --------------------------------------------------------------

    def _access_unit(self, ts32: int, key: bool, pieces: list[bytes], size: int) -> None:
        if self.finished or self.done.is_set():  # done: abandoned by the watchdog while its thread was stuck
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
            self.wall = WallClock(self.rate, self.anchor.timestamp())
            # Parameter sets are known by now (SDP, or in-band before this keyframe's slices).
            self.reorder = Reorder(fmp4.reorder_depth(self.codec, self.depack.params))
        if key and self.wall is not None:
            self.wall.received(self.ext - self.origin, self.clock().timestamp())
        if self.reorder.passthrough(self.ext - self.origin):
            self._sample(self.ext - self.origin, 0, key, pieces, size)
            return
        for dts, pts, (k, unit, n) in self.reorder.push(self.ext - self.origin, (key, pieces, size)):
            self._sample(dts, pts - dts, k, unit, n)
            if self.finished:
                return

    def _sample(self, ticks: int, offset: int, key: bool, pieces: list[bytes], size: int) -> None:
        """One access unit in decode order: decode time ``ticks``, presented ``offset`` ticks later (B-frames).

        Where segments are cut is the shared segmenter's decision (ingest/segmenter.py); what is left here
        is the I/O and the parts of the live playlist.
        """
        if self.hold is not None:
            self._held(ticks, offset, key, pieces, size)
            return
        step = self.seg.step(ticks, key, self.stop.is_set())
        ticks = step.ticks
        if key:
            if self.wall is not None:
                self.wall.steer(ticks)  # here, so a segment's end and the next one's start map alike
            self._flush(ticks)
            self.pending_key = True
            self.part_frames = self._part_frames(self.gop_frames)
            self.gop_frames = 0
        if step.stop:
            self._finish(ticks)
            return
        if step.finish and self.writer is not None:
            self._publish(self.writer, self._at(ticks))
            self.writer = None
        if step.start and not self._open(ticks):
            return
        if not step.write or self.writer is None:
            return
        if not key and self.pending_ticks and (
                len(self.pending_ticks) == self.part_frames
                or ticks - self.pending_ticks[0] + self.seg.frame_ticks > self.part_ticks
                or len(self.pending_ticks) >= MAX_FRAGMENT_FRAMES
                or self.pending_bytes + size > MAX_FRAGMENT_BYTES):
            # Written before it outgrows a live part, so a live player gets this frame's part at once.
            self._flush(ticks)
            self.pending_key = False
        self.gop_frames += 1
        self.pending_ticks.append(ticks)
        self.pending_offsets.append(offset)
        self.pending_sizes.append(size)
        self.pending_bytes += size
        self.pending_pieces += pieces

    def _held(self, ticks: int, offset: int, key: bool, pieces: list[bytes], size: int) -> None:
        """A unit while the handover holds: kept (last GOPs only) until the release says where to start."""
        hold = self.hold
        assert hold is not None
        if self.stop.is_set():
            self.hold = None
            self._finish(ticks)  # nothing was written: the session just ends
            return
        self.held.add(ticks, key, (ticks, offset, key, pieces, size), size)
        if key:
            hold.receiving.set()
        if not hold.released:
            return
        if self.wall is not None:
            # The slew due over the hold, applied now: once shifted, the first segment's start must not move.
            self.wall.steer(ticks)
        keys = self.held.key_ticks()
        since = hold.since.timestamp() if hold.since is not None else None
        join = join_point([self._at(t).timestamp() for t in keys], since)
        if join is None:
            return  # the old recording ended after every held keyframe: the next one continues it
        if join.shift_s and self.wall is not None:
            # The old recorder's time for this keyframe: the index continues with no gap and no overlap.
            self.wall.shift(join.shift_s)
        units = self.held.from_key(join.index)
        self.hold = None
        self.held = HeldGops(0)
        for unit in units:
            self._sample(*unit)
            if self.finished:
                return

    def _part_frames(self, last_gop: int) -> int:
        """Frames per part for the GOP starting now: the last GOP cut into equal parts within the target.

        LL-HLS wants every part but a segment's last within 85-100% of the part target; cutting by
        duration alone leaves a short tail part per GOP (0.48 s x 4 + 0.08 s for a 2 s GOP at 25 fps).
        Equal parts (5 x 0.4 s) keep them alike, and the playlist announces the longest as the target.
        """
        most = max(1, self.part_ticks // max(1, self.seg.frame_ticks))
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
        self.seg.started(ticks)
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
        sizes, pieces, offsets = self.pending_sizes, self.pending_pieces, self.pending_offsets
        self.pending_ticks, self.pending_sizes, self.pending_pieces, self.pending_offsets = [], [], [], []
        self.pending_bytes = 0
        if self.writer is None:
            return
        try:
            self.writer.write_fragment(ticks[0], sizes, durations, pieces, self.pending_key, offsets)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            self.writer.abort()
            self.writer = None
            self.paused = True
            self.seg.dropped()
            self.events.paused(self._at(self.seg.seg_start), "disk full (ENOSPC)")

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
                for dts, pts, (k, unit, n) in self.reorder.drain():
                    if not self.finished:
                        self._sample(dts, pts - dts, k, unit, n)
                if not self.finished:
                    self._finish(self.seg.last + self.seg.frame_ticks)
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

    def abandon(self, error: BaseException) -> None:
        """End the session from the watchdog while its loop thread is stuck (possibly inside this session).

        Only what is safe from another thread: the socket is shut down and the supervisor woken. The
        segment in progress is left as a partial file for start-up repair; closing its descriptor here
        could let the stuck thread write into whatever file reuses the number.
        """
        if self.done.is_set():
            return
        try:
            self.rtsp.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.error = error
        self.done.set()

    def feed(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        self.reader.feed(data)


class Engine:
    """A few event-loop threads sharing all native sessions; a session never blocks another one.

    A watchdog thread replaces a loop thread that stops ticking (or dies): the stuck loop's cameras end
    with the reason in their health, their supervisors reconnect them onto the fresh thread.
    """

    def __init__(self, workers: int = WORKERS, tick_s: float = TICK_S, stall_s: float = STALL_S) -> None:
        self.tick_s, self.stall_s = tick_s, stall_s
        self._lock = threading.Lock()
        self._loops: list[_Loop] = []
        self._workers = workers
        self._closed = threading.Event()
        self.restarts = 0  # loop threads replaced by the watchdog
        self.last_restart: str | None = None

    def add(self, rec: Recording) -> None:
        with self._lock:
            if not self._loops:
                self._loops = [_Loop(self.tick_s, i, 0) for i in range(self._workers)]
                threading.Thread(target=self._watch, name="rec-native-watchdog", daemon=True).start()
            loop = min(self._loops, key=lambda lp: lp.load)
            loop.adopt(rec)

    def _watch(self) -> None:
        while not self._closed.wait(min(1.0, self.stall_s / 4)):
            self.check(time.monotonic())

    def check(self, now: float) -> int:
        """Replace every loop thread that is dead or has not ticked within ``stall_s``; how many were."""
        replaced = 0
        with self._lock:
            for i, loop in enumerate(self._loops):
                alive = loop.thread.is_alive()
                silent = now - loop.beat
                if alive and silent < self.stall_s:
                    continue
                what = f"stalled for {silent:.0f}s" if alive else "died"
                reason = f"recording loop {loop.thread.name} {what}; restarted, reconnecting"
                LOG.error("native engine: %s (%d cameras)", reason, len(loop.sessions) + len(loop.inbox))
                self._loops[i] = _Loop(self.tick_s, loop.index, loop.generation + 1)
                loop.abandon(RtspError(reason))
                self.restarts += 1
                self.last_restart = reason
                replaced += 1
        return replaced

    def close(self) -> None:
        """Stop the watchdog and the loop threads (tests; the process-wide engine lives as long as the process)."""
        self._closed.set()
        with self._lock:
            for loop in self._loops:
                loop.quit.set()


class _Loop:
    def __init__(self, tick_s: float, index: int, generation: int) -> None:
        self.tick_s, self.index, self.generation = tick_s, index, generation
        self.sel = selectors.DefaultSelector()
        self.inbox: list[Recording] = []
        self.lock = threading.Lock()
        self.load = 0
        self.sessions: set[Recording] = set()
        self.beat = time.monotonic()  # when an iteration last began: what the watchdog watches
        self.quit = threading.Event()
        self.abandoned = False  # the watchdog gave up on this thread: it must not touch its sessions again
        name = f"rec-native-{index}" + (f".{generation}" if generation else "")
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def abandon(self, error: BaseException) -> None:
        """Called by the watchdog: end every session of this (stuck) loop from the outside."""
        with self.lock:
            self.abandoned = True
            recs = [*self.sessions, *self.inbox]
            self.inbox = []
        self.quit.set()
        for rec in recs:
            rec.abandon(error)

    def adopt(self, rec: Recording) -> None:
        with self.lock:
            self.inbox.append(rec)
            self.load += 1

    def _end(self, rec: Recording, error: BaseException | None) -> None:
        if self.abandoned:
            return  # the watchdog ended this loop's sessions; a late wake-up must not publish or close them
        try:
            self.sel.unregister(rec.rtsp.sock)
        except (KeyError, ValueError, OSError):
            pass
        with self.lock:
            self.sessions.discard(rec)
            self.load -= 1
        rec.close(error)

    def _run(self) -> None:
        housekeeping = 0.0
        while not self.quit.is_set():
            started = time.monotonic()
            self.beat = started
            if self.inbox:
                with self.lock:
                    new, self.inbox = self.inbox, []
                for rec in new:
                    self._start(rec)
            for key, _mask in self.sel.select(0):
                rec = key.data
                if self.abandoned:
                    return
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
                except (SourceError, ProtocolError, OSError) as exc:
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
            with self.lock:
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
    hold: Handover | None = None,
) -> None:
    """Same contract as ``record_session``: record one connection until it ends (raises) or ``stop`` is set.

    ``hold``: a handover's new recorder; nothing is written until it is released (ingest/handover.py).

    The RTSP handshake runs on the caller's (supervisor's) thread, with a deadline per step, so a dead
    camera only ever blocks its own supervisor; streaming then runs on the shared event loop. Cameras the
    client cannot handle are recorded by the PyAV engine instead, never refused.
    """
    key = (spec.camera_id, spec.url)
    if key in _pyav_only or not spec.url.startswith("rtsp://"):
        record_session(spec, store, target_s=target_s, part_s=part_s, clock=clock, stop=stop, events=events,
                       space_ok=space_ok, hold=hold)
        return
    try:
        rtsp = open_session(spec)
    except Unsupported as exc:
        LOG.info("camera %s: native engine cannot record this stream (%s); using PyAV", spec.camera_id,
                 redact(str(exc)))
        _pyav_only.add(key)
        record_session(spec, store, target_s=target_s, part_s=part_s, clock=clock, stop=stop, events=events,
                       space_ok=space_ok, hold=hold)
        return
    rec = Recording(spec, rtsp, store, target_s=target_s, part_s=part_s, clock=clock, stop=stop, events=events,
                    space_ok=space_ok, hold=hold)
    events.connected()
    engine().add(rec)
    rec.done.wait()
    failure = rec.error
    if failure is not None:
        if isinstance(failure, SourceError):
            raise failure
        if isinstance(failure, ProtocolError):
            # A lying or broken peer: the connection is closed and the supervisor reconnects with backoff.
            raise RtspError(redact(f"protocol error: {failure}"))
        raise RtspError(redact(f"{type(failure).__name__}: {failure}"))
