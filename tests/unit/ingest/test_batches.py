"""A batch's manifest and the cutting of its body into segments (ingest/batches.py), without a hub."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civicam.ingest.batches import MAX_ITEMS, Splitter, parse_manifest
from civicam.ingest.uploads import UploadError, encode_metadata

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _meta(i: int, body: bytes) -> dict[str, Any]:
    start = T0 + timedelta(seconds=4 * i)
    return {"camera_id": 3, "start": start.isoformat(), "end": (start + timedelta(seconds=4)).isoformat(),
            "sha256": hashlib.sha256(body).hexdigest(), "seq": i, "frames": 100, "keyframes": 1, "init_bytes": 10,
            "codec": "h264", "width": 1280, "height": 720, "session": "s"}


def _header(entries: Any) -> str:
    return base64.b64encode(json.dumps(entries).encode()).decode()


def test_a_manifest_lists_each_segment_with_its_length() -> None:
    bodies = [b"a" * 10, b"b" * 20]
    items = parse_manifest(_header([{"length": len(b), "metadata": encode_metadata(_meta(i, b))}
                                    for i, b in enumerate(bodies)]), 30)
    assert [(m.seq, m.start, n) for m, n in items] == [(0, T0, 10), (1, T0 + timedelta(seconds=4), 20)]
    assert items[1][0].sha256 == hashlib.sha256(b"b" * 20).hexdigest()


@pytest.mark.parametrize(("header", "length", "status", "code"), [
    ("not base64!", 1, 400, "bad_batch"),
    (base64.b64encode(b"{not json").decode(), 1, 400, "bad_batch"),
    (_header({"length": 1}), 1, 400, "bad_batch"),
    (_header([]), 0, 400, "bad_batch"),
    (_header([{"length": 1}]), 1, 400, "bad_batch"),
    (_header([{"length": "1", "metadata": ""}]), 1, 400, "bad_batch"),
    (_header([{"length": True, "metadata": ""}]), 1, 400, "bad_batch"),
    (_header([{"length": 0, "metadata": encode_metadata(_meta(0, b""))}]), 0, 413, "too_large"),
    (_header([{"length": 5, "metadata": "camera_id MQ=="}]), 5, 400, "bad_metadata"),
    (_header([{"length": 5, "metadata": encode_metadata(_meta(0, b"12345"))}]), 6, 400, "bad_batch"),
    (_header([{"length": 5, "metadata": encode_metadata(_meta(0, b"12345"))}]), None, 400, "bad_batch"),
    (_header([{"length": 5, "metadata": encode_metadata(_meta(i, b"12345"))} for i in range(MAX_ITEMS + 1)]),
     5 * (MAX_ITEMS + 1), 413, "too_large"),
    ("A" * 70_000, 1, 413, "too_large"),
])
def test_malformed_manifests_are_refused_whole(header: str, length: int | None, status: int, code: str) -> None:
    with pytest.raises(UploadError) as refused:
        parse_manifest(header, length)
    assert (refused.value.status, refused.value.code) == (status, code), str(refused.value)


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6), st.data())
def test_the_body_is_cut_into_its_segments_however_it_arrives(items: list[bytes], data: st.DataObject) -> None:
    body = b"".join(items)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=12)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
    refused = data.draw(st.sets(st.integers(0, len(items) - 1)))  # items whose bytes are dropped
    sinks = [None if i in refused else Sink() for i in range(len(items))]
    splitter = Splitter([len(b) for b in items], sinks)
    for chunk in chunks:
        splitter.write(chunk)
    assert splitter.complete
    for item, sink in zip(items, sinks, strict=True):
        assert sink is None or bytes(sink.data) == item
    with pytest.raises(UploadError, match="runs past"):
        splitter.write(b"x")


def test_a_body_cut_short_says_which_segment_it_reached() -> None:
    sinks = [Sink(), Sink(), Sink()]
    splitter = Splitter([4, 6, 3], sinks)
    splitter.write(b"abcdefg")  # the whole first, three bytes of the second
    assert (splitter.at, splitter.complete) == (1, False)
    assert [bytes(s.data) for s in sinks] == [b"abcd", b"efg", b""]
