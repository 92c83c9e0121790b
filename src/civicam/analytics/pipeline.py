"""Single images -> labelled faces; videos -> anonymous person events and aggregate totals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from civicam.analytics.detections import Detections
from civicam.analytics.faces import FaceDetector, analytics_options, create_detector
from civicam.analytics.labels import MaskLabeller
from civicam.analytics.mask import UNKNOWN, MaskResult
from civicam.analytics.suitability import Suitability, SuitabilityWindow
from civicam.analytics.tracking import FaceTracker, PersonEvent

Frame = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class FaceResult:
    box: tuple[float, float, float, float]
    label: str  # "mask" | "no_mask" | "unknown"
    score: float  # detector score
    confidence: float  # classifier confidence of ``label`` (0 for too-small faces)

    def as_json(self) -> dict[str, object]:
        return {"box": [round(v, 1) for v in self.box], "label": self.label, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Totals:
    people: int
    masked: int
    unmasked: int
    unknown: int

    @property
    def compliance(self) -> float | None:
        """Share of masked among people whose mask state is known; None when nobody is known."""
        known = self.masked + self.unmasked
        return None if known == 0 else self.masked / known

    @classmethod
    def of(cls, events: list[PersonEvent]) -> Totals:
        labels = [e.label for e in events]
        return cls(len(labels), labels.count("mask"), labels.count("no_mask"), labels.count(UNKNOWN))

    def as_json(self) -> dict[str, object]:
        c = self.compliance
        return {"people": self.people, "masked": self.masked, "unmasked": self.unmasked,
                "unknown": self.unknown, "compliance": None if c is None else round(c, 4)}


class FrameAnalyzer:
    """Detect faces and label each mask / no_mask / unknown."""

    def __init__(self, detector: FaceDetector | None = None, labeller: MaskLabeller | None = None,
                 report_score: float = 0.5) -> None:
        self.detector = detector if detector is not None else create_detector(options=analytics_options())
        self.labeller = labeller if labeller is not None else MaskLabeller()
        self.report_score = report_score

    def analyze_raw(self, frame: Frame | None, faces: Detections | None = None) -> tuple[Detections, list[MaskResult]]:
        """All detections down to the detector's own threshold, with their mask results.

        ``faces``: detections already made for this frame (in a batch with other cameras' frames, or by the
        blurred live view: then ``frame`` may be None, where the labels need no picture).
        """
        if faces is None:
            if frame is None:
                raise ValueError("a frame or its detections are needed")
            faces = self.detector.detect(frame)
        return faces, self.labeller.classify(frame, faces)

    def analyze(self, frame: Frame) -> list[FaceResult]:
        faces, results = self.analyze_raw(frame)
        return [FaceResult((float(b[0]), float(b[1]), float(b[2]), float(b[3])), r.label, float(s), r.confidence)
                for b, s, r in zip(faces.boxes, faces.scores, results, strict=False) if s >= self.report_score]


@dataclass(frozen=True)
class VideoReport:
    events: list[PersonEvent]
    totals: Totals
    frames_analyzed: int
    duration_s: float
    suitability: Suitability  # from the heights of confidently detected faces (numbers only)


class RateSampler:
    """Which of a stream's frame times (seconds from its first frame, in order) to analyse, for about
    ``fps`` a second: the first, then each one a period after the last kept, with half a period's slack for
    jittery timestamps. Pure; one per stream.

    >>> s = RateSampler(5.0)
    >>> [t for t in (0.0, 0.04, 0.2, 0.24, 0.4, 0.44) if s.keep(t)]
    [0.0, 0.2, 0.4]
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._next = 0.0

    def keep(self, t: float) -> bool:
        if t + 1e-6 < self._next:
            return False
        self._next = max(self._next + self.period, t + self.period * 0.5)
        return True


def sample_frames(source: str | Path, fps: float, decoder: str | None = None) -> Iterator[tuple[float, Frame]]:
    """Decode ``source`` with PyAV and yield (seconds from its first frame, BGR frame) about ``fps`` times
    per second. From its first frame, not the stream's zero: a recorder's segments continue one timeline
    through a session (LL-HLS needs that), so the tenth segment's frames start 36 s in; analytics adds the
    segment's own start to these times, and once added them both (tracks broke at every boundary).

    ``decoder``: an FFmpeg decoder by name (NVDEC's ``h264_cuvid`` on a GPU node, from
    ``civicam.analytics.accel.choose_decoder``) instead of the stream's default software one.
    """
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        sampler = RateSampler(fps)
        decoded: Iterator[Any] = container.decode(stream)
        if decoder is not None:
            codec: Any = av.CodecContext.create(decoder, "r")
            codec.extradata = stream.codec_context.extradata
            decoded = (f for packet in container.demux(stream) for f in codec.decode(packet))
        first: float | None = None
        for i, frame in enumerate(decoded):
            t = float(frame.time) if frame.time is not None else i / float(stream.average_rate or 25)
            first = t if first is None else first
            t -= first
            if not sampler.keep(t):
                continue
            yield t, np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)


class VideoAnalyzer:
    """Analyse ``fps`` frames per second of one camera's stream or file. Tracks stay in this object's
    memory for this one stream; only anonymous events and totals come out."""

    def __init__(self, frame_analyzer: FrameAnalyzer | None = None, fps: float = 5.0,
                 tracker: FaceTracker | None = None) -> None:
        self.frame_analyzer = frame_analyzer if frame_analyzer is not None else FrameAnalyzer()
        self.fps = fps
        self.tracker = tracker if tracker is not None else FaceTracker()
        self.suitability = SuitabilityWindow()

    def feed(self, t: float, frame: Frame) -> list[PersonEvent]:
        faces, results = self.frame_analyzer.analyze_raw(frame)
        self.suitability.add(faces.heights[faces.scores >= self.tracker.high_score].tolist())
        return self.tracker.update(t, faces, results)

    def analyze(self, source: str | Path) -> VideoReport:
        events: list[PersonEvent] = []
        n, last_t = 0, 0.0
        for t, frame in sample_frames(source, self.fps):
            events += self.feed(t, frame)
            n, last_t = n + 1, t
        events += self.tracker.flush()
        return VideoReport(events, Totals.of(events), n, last_t, self.suitability.verdict())
