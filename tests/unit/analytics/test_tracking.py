from __future__ import annotations

from pathlib import Path

from civicam.analytics.detections import Detections
from civicam.analytics.mask import MaskResult
from civicam.analytics.pipeline import Totals, VideoAnalyzer
from civicam.analytics.tracking import FaceTracker

MASK = MaskResult("mask", 0.9, (0.9, 0.1))
NO_MASK = MaskResult("no_mask", 0.8, (0.2, 0.8))


def test_tracker_votes_one_event_per_person() -> None:
    tr = FaceTracker()
    events = []
    for k in range(8):  # 5 fps; faces 40 px moving 70 px per analysed frame (walking speed)
        t = k * 0.2
        boxes = [[100 + 70 * k, 100, 140 + 70 * k, 140], [900 - 70 * k, 400, 940 - 70 * k, 440]]
        res = [MASK if k != 3 else NO_MASK, NO_MASK]  # one noisy frame is out-voted
        if k == 4:  # a one-frame false positive
            boxes.append([600, 50, 630, 80])
            res.append(MASK)
        events += tr.update(t, Detections.from_lists(boxes, [0.9] * len(boxes)), res)
    events += tr.update(5.0, Detections(), [])
    events += tr.flush()
    assert sorted(e.label for e in events) == ["mask", "no_mask"]
    assert tr.active == 0
    totals = Totals.of(events).as_json()
    assert totals == {"people": 2, "masked": 1, "unmasked": 1, "unknown": 0, "compliance": 0.5}


def test_video_counts_people(tmp_path: Path, test_split: list[tuple[Path, int]]) -> None:
    from data import read_bgr
    from scenes import entrance_video

    crops = [(read_bgr(test_split[i][0]), test_split[i][1]) for i in (2, 400, 100)]
    path = tmp_path / "entrance.mp4"
    labels = entrance_video(path, 3, seed=1, size_range=(70, 90), width=640, height=360, crops=crops)
    report = VideoAnalyzer(fps=5).analyze(path)
    assert report.totals.people == 3
    assert report.totals.masked + report.totals.unmasked + report.totals.unknown == 3
    assert report.frames_analyzed >= 5 * 6
    assert report.suitability.faces_seen >= 3 * 3 and report.suitability.median_face_px > 20
    assert len(labels) == 3
