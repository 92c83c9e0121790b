"""The ``analyze`` Typer sub-app: JSON shapes and exit code 2 for unreadable input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from civicam.cli.analyze import app

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "datasets"
runner = CliRunner()


@pytest.fixture(scope="module")
def scene_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two faces on a CCTV frame: held-out dataset crops where ../shared is here, else the portrait."""
    path = tmp_path_factory.mktemp("cli") / "scene.png"
    if not (SHARED / "mask-crops").is_dir():
        from support.faces import Walker, background, render, visible_faces

        img, _ = render([Walker(f, 200 + 600 * k, 200, 0, 0) for k, f in enumerate(visible_faces(2, 140))],
                        0, background())
        cv2.imwrite(str(path), img)
        return path
    sys.path.insert(0, str(REPO / "training" / "mask"))
    from data import read_bgr, split, video_frames
    from scenes import compose

    test = split()["test"]
    bg = cv2.resize(video_frames(1)[0], (1280, 720))
    crops = [(read_bgr(test[i][0]), test[i][1]) for i in (1, 300)]
    s = compose(bg, crops, [120, 140], np.random.default_rng(5), "hd")
    cv2.imwrite(str(path), s.image)
    return path


def test_image_json(scene_png: Path) -> None:
    r = runner.invoke(app, ["image", str(scene_png), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    (img,) = data["images"]
    assert img["path"] == str(scene_png) and (img["width"], img["height"]) == (1280, 720)
    assert len(img["faces"]) >= 1
    for f in img["faces"]:
        assert set(f) == {"box", "label", "score"}
        assert len(f["box"]) == 4 and f["label"] in ("mask", "no_mask", "unknown")
        assert 0.0 <= f["score"] <= 1.0


def test_video_json(tmp_path: Path) -> None:
    import av

    path = tmp_path / "blank.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for _ in range(25):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((240, 320, 3), 90, np.uint8), format="bgr24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    r = runner.invoke(app, ["video", str(path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"people": 0, "masked": 0, "unmasked": 0, "unknown": 0, "compliance": None}


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    r = runner.invoke(app, ["image", str(bad), "--json"])
    assert r.exit_code == 2 and "cannot read image" in r.output
    r = runner.invoke(app, ["video", str(bad), "--json"])
    assert r.exit_code == 2 and "cannot read video" in r.output
    r = runner.invoke(app, ["video", str(tmp_path / "missing.mp4")])
    assert r.exit_code == 2
