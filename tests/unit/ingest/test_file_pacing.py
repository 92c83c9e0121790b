"""A file camera plays like a real one: paced to real time, looping, timestamps always rising."""

from __future__ import annotations

from pathlib import Path

import av

from civicam.demo import synth_video
from civicam.ingest.sources import packets


def test_file_source_loops_in_real_time(tmp_path: Path) -> None:
    clip = synth_video(tmp_path / "clip.mp4", 160, 120, 10, 1.0)  # 10 frames, 1 s
    now = [0.0]
    waits: list[float] = []

    def wait(s: float) -> None:
        waits.append(s)
        now[0] += s  # a fake clock: the test never sleeps

    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        tb = float(stream.time_base)
        it = packets(c, stream, clip.as_uri(), clock=lambda: now[0], wait=wait)
        got = [next(it) for _ in range(35)]  # three and a half loops of a 10-frame file
    dts = [p.dts for p in got]
    assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), "timestamps must rise across loops"
    assert abs(dts[10] * tb - 1.0) < 1e-6 and abs(dts[34] * tb - 3.4) < 1e-6
    assert [p.is_keyframe for p in got[::10]] == [True] * 4  # every loop starts on a keyframe
    assert abs(now[0] - 3.4) < 1e-6 and len(waits) == 34  # paced: 3.4 s of stream took 3.4 s of clock


def test_network_urls_are_not_paced(tmp_path: Path) -> None:
    clip = synth_video(tmp_path / "clip.mp4", 160, 120, 10, 1.0)

    def no_wait(_s: float) -> None:
        raise AssertionError("network streams are paced by the camera, never by the hub")

    with av.open(str(clip)) as c:
        got = list(packets(c, c.streams.video[0], "rtsp://127.0.0.1/x", wait=no_wait))
    assert len([p for p in got if p.dts is not None]) == 10
