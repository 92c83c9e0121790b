"""Export one MP4 of an interval: remux from the keyframe at or before ``start`` up to ``end``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import av

from civicam.live.transform import FrameTransform
from civicam.storage.backend import SegmentStore
from civicam.storage.models import Segment

OUT_TB = Fraction(1, 90000)


class NothingToExport(LookupError):
    """No recording overlaps the interval."""


@dataclass(frozen=True)
class ExportResult:
    """The clip written: its first frame's wall time, duration, frames and size."""

    first_frame: datetime
    duration_s: float
    frames: int
    bytes: int


def export_clip(store: SegmentStore, segments: Sequence[Segment], start: datetime, end: datetime, dest: str,
                transform: FrameTransform | None = None) -> ExportResult:
    """Write ``dest`` from ``segments`` (oldest first, overlapping the interval).

    Output timestamps are rebuilt from each segment's wall-clock start, so clips spanning a reconnect stay
    monotonic and the gap shows as a jump in time rather than breaking the file. With a ``transform``
    (the blurring seam) frames are decoded, transformed and re-encoded; without, packets are copied.
    """
    if not segments:
        raise NothingToExport("no recording in that interval")
    tmp = dest + ".partial"
    written = 0
    first_t: datetime | None = None
    last_t: datetime | None = None
    out: Any = None
    ost: Any = None
    enc_frames = 0
    try:
        for seg in segments:
            with av.open(store.local_path(seg.path)) as inp:
                stream = inp.streams.video[0]
                tb = stream.time_base or OUT_TB
                if out is None:
                    out = av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"})
                    if transform is None:
                        ost = out.add_stream_from_template(stream)
                    else:
                        ost = out.add_stream("libx264", rate=stream.average_rate or 25)
                        ost.width, ost.height = stream.codec_context.width, stream.codec_context.height
                        ost.pix_fmt = "yuv420p"
                    ost.time_base = OUT_TB
                origin: int | None = None
                pending: list[Any] = []
                for packet in inp.demux(stream):
                    if packet.dts is None:
                        continue
                    if origin is None:
                        origin = packet.dts
                    t = seg.start + timedelta(seconds=float((packet.dts - origin) * tb))
                    if t >= end:
                        break
                    if first_t is None:
                        if t < start or not pending and not packet.is_keyframe:
                            # Before ``start``: remember only the current GOP, from its keyframe.
                            if packet.is_keyframe:
                                pending = [(packet, t)]
                            elif pending:
                                pending.append((packet, t))
                            continue
                        first_t = pending[0][1] if pending else t
                    for pkt, pt in [*pending, (packet, t)]:
                        last_t = pt
                        if transform is None:
                            _write_copy(out, ost, pkt, pt, first_t, tb)
                        else:
                            enc_frames += _write_transformed(out, ost, pkt, pt, first_t, transform)
                        written += 1
                    pending = []
        if out is not None and transform is not None:
            for frame in transform.flush():
                enc_frames += _encode(out, ost, frame)
            for pkt in ost.encode(None):
                out.mux(pkt)
        if out is not None:
            out.close()
            out = None
    except BaseException:
        if out is not None:
            out.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if written == 0 or first_t is None or last_t is None:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise NothingToExport("no frames in that interval")
    os.replace(tmp, dest)
    duration = (last_t - first_t).total_seconds()
    return ExportResult(first_t, duration, written, os.path.getsize(dest))


def _write_copy(out: Any, ost: Any, packet: Any, t: datetime, t0: datetime, tb: Fraction) -> None:
    dts = round((t - t0).total_seconds() * 90000)
    shift = 0 if packet.pts is None else round((packet.pts - packet.dts) * tb * 90000)
    packet.dts = dts
    packet.pts = dts + shift
    packet.time_base = OUT_TB
    packet.stream = ost
    out.mux(packet)


def _write_transformed(out: Any, ost: Any, packet: Any, t: datetime, t0: datetime, transform: FrameTransform) -> int:
    n = 0
    for frame in packet.decode():
        # The output timeline is set before the transform, which may hand the frame back later.
        frame.pts = round((t - t0).total_seconds() * 90000)
        frame.time_base = OUT_TB
        for new in transform.push(frame):
            n += _encode(out, ost, new)
    return n


def _encode(out: Any, ost: Any, frame: Any) -> int:
    n = 0
    for pkt in ost.encode(frame):
        out.mux(pkt)
        n += 1
    return n
