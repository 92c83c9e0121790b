from __future__ import annotations

import numpy as np
import pytest

from civicam.analytics.detections import Detections
from civicam.analytics.faces import DEFAULT_DETECTOR, REGISTRY, create_detector


def test_detections_value() -> None:
    d = Detections.from_lists([[0, 0, 10, 20], [5, 5, 15, 45]], [0.9, 0.4])
    assert len(d) == 2 and d.labels == ("face", "face")
    assert d.heights.tolist() == [20, 40]
    kept = d.select(d.scores > 0.5)
    assert len(kept) == 1 and kept.scores.tolist() == pytest.approx([0.9])
    assert d.with_labels(["mask", "no_mask"]).labels == ("mask", "no_mask")
    assert len(Detections()) == 0
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4), np.float32), np.zeros(1, np.float32))


def test_registry() -> None:
    assert {"rfb", "haar", "centerface"} <= set(REGISTRY) and DEFAULT_DETECTOR == "rfb"
    with pytest.raises(ValueError, match="unknown face detector"):
        create_detector("nope")
    assert len(create_detector().detect(np.zeros((120, 160, 3), np.uint8))) == 0
    with pytest.raises(ValueError):
        create_detector().detect(np.zeros((10, 10), np.uint8))


def test_mask_probabilities_travel_with_their_boxes() -> None:
    d = Detections.from_lists([[0, 0, 10, 20], [5, 5, 15, 45]], [0.9, 0.4])
    assert np.isnan(d.probs).all()
    d = Detections(d.boxes, d.scores, ("mask", "no_mask"), np.array([0.8, 0.1], np.float32))
    assert d.select([1]).probs.tolist() == pytest.approx([0.1])
    assert d.clipped(8, 8).probs.tolist() == pytest.approx([0.8, 0.1])
    with pytest.raises(ValueError, match="mask probabilities"):
        Detections(d.boxes, d.scores, (), np.zeros(3, np.float32))


def test_the_services_threshold_builds_the_haar_baseline_too() -> None:
    """The analytics service builds whatever `analytics.detector` names with its threshold; the Haar
    baseline once refused the keyword (TypeError at start-up)."""
    import numpy as np

    from civicam.analytics.faces import ANALYTICS_MIN_SCORE, HaarDetector, create_detector

    det = create_detector("haar", {"min_score": ANALYTICS_MIN_SCORE})
    found = det.detect(np.zeros((120, 160, 3), np.uint8))
    assert isinstance(det, HaarDetector) and det.min_score == ANALYTICS_MIN_SCORE and len(found) == 0
