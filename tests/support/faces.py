"""Test video with real faces from the shared dataset: what the privacy and analytics tests look for."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from civicam.analytics.faces import create_detector
from civicam.storage.media import FMP4_OPTIONS

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
WITHOUT_MASK = SHARED / "datasets" / "mask-crops" / "without_mask"
W, H, FPS = 1280, 720, 25


def visible_faces(count: int, size: int = 180, folder: Path = WITHOUT_MASK) -> list[np.ndarray]:
    """Crops the default detector finds when pasted on a plain background: faces a viewer could see."""
    det, found = create_detector(), []
    for path in sorted(folder.glob("*.jpg"))[:80]:
        face = cv2.resize(cv2.imread(str(path)), (size, size))
        canvas = np.full((H, W, 3), 110, np.uint8)
        canvas[200:200 + size, 300:300 + size] = face
        if len(det.detect(canvas)):
            found.append(face)
        if len(found) == count:
            return found
    pytest.fail(f"the detector found fewer than {count} of the dataset's faces")


def face_clip(path: Path, faces: list[np.ndarray], seconds: float = 2.0, step_px: int = 4) -> None:
    """People walking slowly across a corridor, as fragmented MP4 the way the recorder writes it."""
    size = faces[0].shape[0]
    with av.open(str(path), "w", format="mp4", options=FMP4_OPTIONS) as out:
        st = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "g": str(FPS)})
        st.width, st.height, st.pix_fmt, st.time_base = W, H, "yuv420p", Fraction(1, 90000)
        background = np.random.default_rng(7).integers(90, 140, (H, W, 3)).astype(np.uint8)
        for i in range(int(FPS * seconds)):
            img = background.copy()
            for k, face in enumerate(faces):
                x, y = 150 + k * 550 + step_px * i, 180 + k * 120
                img[y:y + size, x:x + size] = face
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i * 90000 // FPS, Fraction(1, 90000)
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
