"""H.264 encoding of blurred frames straight into fMP4 fragments, for the blurred live view's parts.

x264 with ``tune=zerolatency`` gives one packet per frame at once (no look-ahead, no B-frames), so a
fragment can be written as soon as its last frame is blurred; keyframes are placed where the caller says
(where the source segment has them), so blurred segments and parts line up with the recorder's. Packets
come out in Annex B; fMP4 wants length-prefixed NAL units and the parameter sets in the init section
(civicam.ingest.fmp4 writes the boxes, as for the native recorder).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from civicam.ingest import fmp4

SPS, PPS, AUD = 7, 8, 9
# 1280x720, one thread: ultrafast 6.1 ms a frame, superfast 11.7, veryfast 16.2 (at about the same bitrate
# on the privacy clip); at 640x360 1.7 / 2.6 / 4.0 ms. Blurring every watched stream, CPU is what runs out.
PRESET = "ultrafast"
CRF = "24"


def nal_units(annexb: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes of 3 or 4 bytes).

    >>> [n.hex() for n in nal_units(bytes.fromhex("00000001 6742 000001 68ce 00000001 65aa"))]
    ['6742', '68ce', '65aa']
    """
    out: list[bytes] = []
    pos = annexb.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = annexb.find(b"\x00\x00\x01", start)
        end = len(annexb) if nxt < 0 else nxt
        nal = annexb[start:end]
        if nxt >= 0 and nal.endswith(b"\x00"):
            nal = nal[:-1]  # the first zero of a 4-byte start code belongs to the next unit
        if nal:
            out.append(nal)
        pos = nxt
    return out


@dataclass(frozen=True)
class Coded:
    """One encoded frame as an fMP4 sample."""

    data: bytes  # length-prefixed NAL units, parameter sets and delimiters left to the init section
    pts: int
    key: bool


class FragmentEncoder:
    """Frames in, fMP4 samples out; ``init`` (ftyp+moov) is known once the first keyframe is encoded.

    ``time_base`` is the source track's, so blurred samples keep the source's timestamps.
    """

    def __init__(self, width: int, height: int, time_base: Fraction, rate: Fraction = Fraction(25), *,
                 preset: str = PRESET, crf: str = CRF, threads: int = 1) -> None:
        self.width, self.height = width, height
        ctx = av.CodecContext.create("libx264", "w")
        assert isinstance(ctx, av.video.codeccontext.VideoCodecContext)
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base, ctx.framerate = time_base, rate
        # No keyframes of its own (keyint huge, no scene cuts): only where the source has them, as IDR.
        ctx.options = {"preset": preset, "tune": "zerolatency", "crf": crf, "threads": str(threads),
                       "x264-params": "keyint=100000:min-keyint=100000:scenecut=0:forced-idr=1"}
        self._ctx = ctx
        self._params: dict[int, bytes] = {}
        self.init: bytes | None = None

    def encode(self, frame: av.VideoFrame, key: bool) -> list[Coded]:
        frame.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
        if frame.width != self.width or frame.height != self.height or frame.format.name != "yuv420p":
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        return [self._sample(p) for p in self._ctx.encode(frame)]

    def flush(self) -> list[Coded]:
        return [self._sample(p) for p in self._ctx.encode(None)]

    def _sample(self, packet: av.Packet[Any]) -> Coded:
        pieces: list[bytes] = []
        for nal in nal_units(bytes(packet)):
            kind = nal[0] & 0x1F
            if kind in (SPS, PPS):
                self._params.setdefault(kind, nal)
            elif kind != AUD:
                pieces += [len(nal).to_bytes(4, "big"), nal]
        if self.init is None and SPS in self._params and PPS in self._params:
            self.init, _ = fmp4.init_segment("h264", self._params, int(1 / self._ctx.time_base))
        return Coded(b"".join(pieces), int(packet.pts or 0), bool(packet.is_keyframe))


def fragment(sequence: int, samples: list[Coded], durations: list[int]) -> bytes:
    """One moof+mdat of ``samples`` (decode time of the first = its pts: no B-frames, so dts = pts)."""
    head = fmp4.fragment_header(sequence, samples[0].pts, [len(s.data) for s in samples], durations,
                                samples[0].key)
    return head + b"".join(s.data for s in samples)
