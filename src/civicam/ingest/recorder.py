"""One connection to one camera, remuxed (never re-encoded) into fMP4 segments cut on keyframes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from threading import Event
from typing import Any, Protocol

import av
from av.packet import Packet
from av.stream import Stream

from civicam.domain.segments import SegmentDone, partial_path, published_path
from civicam.ingest.handover import Handover
from civicam.ingest.segmenter import Segmenter
from civicam.ingest.sources import SourceSpec, open_source, packets
from civicam.storage.backend import SegmentStore, is_disk_full
from civicam.storage.media import FMP4_OPTIONS, init_length


class SessionEvents(Protocol):
    """What a recording session reports to its supervisor."""

    def connected(self) -> None: ...
    def segment(self, done: SegmentDone) -> None: ...
    def paused(self, at: datetime, detail: str) -> None: ...
    def resumed(self) -> None: ...


class SegmentWriter:
    """Muxes packets into a partial file and publishes it by rename when finished."""

    def __init__(self, store: SegmentStore, camera_id: int, start: datetime, template: Stream, session: str,
                 part_s: float) -> None:
        self.store = store
        self.camera_id = camera_id
        self.start = start
        self.session = session
        self.partial = partial_path(camera_id, start)
        self.frames = 0
        self.keyframes = 0
        # FFmpeg cuts a fragment once the next packet reaches frag_duration; asking for 0.9 of the part
        # target keeps every fragment (a live playlist part) within it.
        options = {**FMP4_OPTIONS, "frag_duration": str(int(part_s * 900_000))}
        self._out = av.open(store.spool(self.partial), "w", format="mp4", options=options)
        try:
            self._ost = self._out.add_stream_from_template(template)
            ctx: Any = template.codec_context
            self.codec, self.width, self.height = str(ctx.name), int(ctx.width or 0), int(ctx.height or 0)
        except BaseException:
            self.abort()
            raise

    def write(self, packet: Packet) -> None:  # type: ignore[type-arg]
        packet.stream = self._ost
        self._out.mux(packet)
        self.frames += 1
        if packet.is_keyframe:
            self.keyframes += 1

    def finish(self, end: datetime) -> SegmentDone:
        """Flush the last fragment, rename to the published name and describe the result."""
        self._out.close()
        final = published_path(self.partial)
        size = self.store.publish(self.partial, final)
        return SegmentDone(self.camera_id, final, self.start, end, size, self.frames, self.keyframes,
                           init_length(self.store.local_path(final)), self.codec, self.width, self.height,
                           self.session)

    def abort(self) -> None:
        """Drop the partial (disk full, or nothing worth keeping)."""
        try:
            self._out.close()
        except (av.FFmpegError, OSError):
            pass
        try:
            self.store.delete(self.partial)
        except OSError:
            pass


def record_session(
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
    """Record one connection until the stream ends or fails (raises) or ``stop`` is set.

    ``hold``: a handover's new recorder writes nothing until released, then starts at the next keyframe
    (this engine holds no GOPs, so the supervisor records the short gap; the native engine has none).

    Wall-clock time is anchored once, at the first keyframe, and then follows the stream's own decode
    timestamps, so segment bounds do not jitter with network delivery. Per packet only integer arithmetic
    and the mux call run in Python; datetimes are built at keyframes only.
    """
    container = open_source(spec)
    writer: SegmentWriter | None = None
    num, den = 1, 90000
    seg = Segmenter(0, 3600)
    try:
        stream = container.streams.video[0]
        tb = stream.time_base
        num, den = (tb.numerator, tb.denominator) if tb else (1, 90000)
        rate = stream.average_rate or stream.guessed_rate
        # The cutting rules, shared with the native engine (ingest/segmenter.py).
        seg = Segmenter(int(target_s * den / num), int(den / (num * float(rate))) if rate else int(0.04 * den / num))
        session = secrets.token_hex(8)
        events.connected()
        origin: int | None = None
        anchor = clock()
        paused = False

        def at(ticks: int) -> datetime:
            return anchor + timedelta(seconds=ticks * num / den)

        for packet in packets(container, stream, spec.url):
            dts = packet.dts
            if dts is None:
                continue  # the demuxer's end-of-stream flush packet
            key = packet.is_keyframe
            if hold is not None:
                if stop.is_set():
                    break
                if key:
                    hold.receiving.set()
                if not hold.released:
                    continue
                hold = None
            if origin is None:
                if not key:
                    continue
                origin = dts
                anchor = clock()
            step = seg.step(dts - origin, key, stop.is_set())
            ticks = step.ticks
            if step.stop:
                break
            if step.finish and writer is not None:
                events.segment(writer.finish(at(ticks)))
                writer = None
            if step.start:
                if not space_ok():
                    if not paused:
                        paused = True
                        events.paused(at(ticks), "storage quota or disk full")
                    continue
                if paused:
                    paused = False
                    events.resumed()
                try:
                    writer = SegmentWriter(store, spec.camera_id, at(ticks), stream, session, part_s)
                except OSError as exc:
                    if not is_disk_full(exc):
                        raise
                    paused = True
                    events.paused(at(ticks), "disk full (ENOSPC)")
                    continue
                seg.started(ticks)
            if not step.write or writer is None:
                continue
            pts = packet.pts
            packet.pts = ticks + ((pts - dts) if pts is not None else 0)
            packet.dts = ticks
            try:
                writer.write(packet)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                writer.abort()
                writer = None
                seg.dropped()
                paused = True
                events.paused(at(seg.seg_start), "disk full (ENOSPC)")
        if writer is not None:
            end_ticks = seg.last + seg.frame_ticks
            events.segment(writer.finish(anchor + timedelta(seconds=end_ticks * num / den)))
            writer = None
    finally:
        if writer is not None:
            # An error mid-segment: keep what was written; it is a valid fMP4 up to the last fragment.
            try:
                end = writer.start + timedelta(seconds=(seg.last + seg.frame_ticks - seg.seg_start) * num / den)
                events.segment(writer.finish(end))
            except (av.FFmpegError, OSError, ValueError):
                writer.abort()
        container.close()
