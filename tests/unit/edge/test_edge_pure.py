"""Pure parts of the edge gateway: which segment goes next, the tus metadata codec, fingerprints, the config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civicam.auth.tls import normalise_fingerprint
from civicam.edge.config import EdgeConfig
from civicam.edge.gateway import choose_next
from civicam.edge.spool import Spooled
from civicam.edge.stream import sendable
from civicam.ingest.uploads import UploadError, encode_metadata, parse_metadata, segment_meta, stream_meta
from civicam.storage.fragments import Fragment, FragmentIndex

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def seg(i: int) -> Spooled:
    start = T0 + timedelta(seconds=2 * i)
    return Spooled(1, f"p{i}", start, start + timedelta(seconds=2), 100, "0" * 64, i, 50, 1, 10, "h264", 1280, 720,
                   "s")


@pytest.mark.parametrize(("pending", "now_s", "expected"), [
    ([0], 2, 0),                      # one waiting: it
    ([0, 1, 2], 6.5, 2),              # backlog and a live one: live first
    ([0, 1, 2], 30, 0),               # backlog only (the newest is old): oldest first, in order
    ([5, 9], 20.5, 9),                # the live one after a hole
])
def test_choose_next_live_first_then_oldest(pending: list[int], now_s: float, expected: int) -> None:
    items = [seg(i) for i in pending]
    assert choose_next(items, T0 + timedelta(seconds=now_s), 2.0).seq == expected


def good_meta() -> dict[str, object]:
    return {"camera_id": 3, "start": T0.isoformat(), "end": (T0 + timedelta(seconds=2)).isoformat(),
            "sha256": "a" * 64, "seq": 4, "frames": 50, "keyframes": 1, "init_bytes": 700, "codec": "h264",
            "width": 1280, "height": 720, "session": "abc"}


def test_metadata_round_trip() -> None:
    meta = segment_meta(parse_metadata(encode_metadata(good_meta())))
    assert (meta.camera_id, meta.start, meta.seq, meta.sha256) == (3, T0, 4, "a" * 64)


@pytest.mark.parametrize(("change", "message"), [
    ({"sha256": "xyz"}, "64 hex"),
    ({"start": "2026-12-01T12:00:00"}, "aware"),
    ({"end": T0.isoformat()}, "start < end"),
    ({"seq": -1}, "negative"),
    ({"camera_id": "one"}, "bad value"),
    ({"frames": None}, "bad value"),
])
def test_bad_metadata_is_refused_clearly(change: dict[str, object], message: str) -> None:
    values = {**good_meta(), **change}
    with pytest.raises(UploadError, match=message) as info:
        segment_meta(parse_metadata(encode_metadata(values)))
    assert info.value.status == 400


def test_metadata_lacking_a_field_or_not_base64() -> None:
    values = good_meta()
    del values["sha256"]
    with pytest.raises(UploadError, match="lacks 'sha256'"):
        segment_meta(parse_metadata(encode_metadata(values)))
    with pytest.raises(UploadError, match="not base64"):
        parse_metadata("camera_id !!!")


@pytest.mark.parametrize(("value", "ok"), [
    ("AB:" * 31 + "AB", True), ("ab" * 32, True), ("ab" * 31, False), ("zz" * 32, False),
])
def test_fingerprint_forms(value: str, ok: bool) -> None:
    if ok:
        assert normalise_fingerprint(value) == "ab" * 32
    else:
        with pytest.raises(ValueError, match="64 hex"):
            normalise_fingerprint(value)


def test_config_refuses_clear_http_and_missing_token(tmp_path: Path) -> None:
    base = {"hub_fingerprint": "ab" * 32, "spool_dir": str(tmp_path), "token": "cst_x"}
    with pytest.raises(ValueError, match="https"):
        EdgeConfig.model_validate({**base, "hub_url": "http://hub"})
    with pytest.raises(ValueError, match="token"):
        EdgeConfig.model_validate({**base, "hub_url": "https://hub", "token": None})
    with pytest.raises(ValueError, match="unique"):
        EdgeConfig.model_validate({**base, "hub_url": "https://hub",
                                   "cameras": [{"name": "a", "url": "rtsp://x"}, {"name": "a", "url": "rtsp://y"}]})


def _index(init: int, fragments: list[tuple[int, int]]) -> FragmentIndex:
    return FragmentIndex(init, 90000 if init else 0, tuple(Fragment(o, n, 0, 45000, True) for o, n in fragments))


@pytest.mark.parametrize(("index", "expected"), [
    (_index(0, []), 0),  # the init section not whole yet: nothing to send
    (_index(700, []), 700),  # ftyp+moov alone: the hub can open the file
    (_index(700, [(700, 5000)]), 5700),  # through the last complete fragment
    (_index(700, [(700, 5000), (5700, 4000)]), 9700),
])
def test_a_growing_segment_is_sent_through_its_last_complete_fragment(index: FragmentIndex, expected: int) -> None:
    assert sendable(index) == expected


@pytest.mark.parametrize(("meta", "ok"), [
    ({"camera_id": "3", "start": "2026-12-01T12:00:00+00:00"}, True),
    ({"camera_id": "3", "start": "2026-12-01T12:00:00"}, False),  # naive time
    ({"camera_id": "x", "start": "2026-12-01T12:00:00+00:00"}, False),
    ({"start": "2026-12-01T12:00:00+00:00"}, False),
])
def test_stream_metadata_needs_camera_and_aware_start(meta: dict[str, str], ok: bool) -> None:
    if ok:
        assert stream_meta(meta) == (3, datetime(2026, 12, 1, 12, tzinfo=UTC))
    else:
        with pytest.raises(UploadError) as exc:
            stream_meta(meta)
        assert exc.value.code == "bad_metadata"
