from __future__ import annotations

import numpy as np
import pytest

from civicam.analytics.detections import Detections
from civicam.analytics.faces import REGISTRY, create_detector


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
    assert {"yunet", "haar"} <= set(REGISTRY)
    with pytest.raises(ValueError, match="unknown face detector"):
        create_detector("nope")
    assert len(create_detector("yunet").detect(np.zeros((120, 160, 3), np.uint8))) == 0
    with pytest.raises(ValueError):
        create_detector("yunet").detect(np.zeros((10, 10), np.uint8))
