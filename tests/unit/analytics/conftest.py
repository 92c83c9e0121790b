"""Shared fixtures: the shipped ONNX model, the chosen detector, held-out crops and composed scenes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO / ".." / "shared" / "datasets"
sys.path.insert(0, str(REPO / "training" / "mask"))

from civicam.analytics.faces import FaceDetector, create_detector  # noqa: E402
from civicam.analytics.mask import MaskClassifier  # noqa: E402


def _require_shared() -> None:
    from support.services import require

    require((SHARED / "mask-crops").is_dir(), "shared/datasets beside the repo")


@pytest.fixture(scope="session")
def classifier() -> MaskClassifier:
    return MaskClassifier()


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    return create_detector(options={"min_score": 0.3})


@pytest.fixture(scope="session")
def test_split() -> list[tuple[Path, int]]:
    _require_shared()
    from data import split

    return split()["test"]


@pytest.fixture(scope="session")
def background() -> Iterator[np.ndarray]:
    _require_shared()
    import cv2
    from data import video_frames

    yield cv2.resize(video_frames(1)[0], (1280, 720))
