"""Finding the segment in progress on disk: same connection, published but not indexed, a new connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civicam.domain.segments import partial_path, segment_path
from civicam.ingest import fmp4
from civicam.live.edge import LiveState, add_edge
from civicam.storage.backend import LocalDiskStore
from civicam.storage.models import Segment

SPS = bytes.fromhex("6764002aacd940780227e5c04400000303ec0000ea6038a0d0b2c0")
PPS = bytes.fromhex("68ebe3cb22c0")
T0 = datetime(2026, 11, 22, 4, 59, 56, tzinfo=UTC)
CAM = 3


def _write(store: LocalDiskStore, rel: str, fragments: int) -> None:
    init, _ = fmp4.init_segment("h264", {7: SPS, 8: PPS})
    data = init + b"".join(fmp4.fragment_header(n + 1, n * 43200, [10] * 12, [3600] * 12, n % 4 == 0)
                           + bytes(120) for n in range(fragments))
    Path(store.spool(rel)).write_bytes(data)


def _last() -> Segment:
    return Segment(id=1, camera_id=CAM, seq=41, start=T0 - timedelta(seconds=4), end=T0,
                   path=segment_path(CAM, T0 - timedelta(seconds=4)), session="s")


@pytest.fixture
def store(tmp_path: Path) -> LocalDiskStore:
    return LocalDiskStore(tmp_path / "rec")


def test_the_partial_that_starts_where_the_last_segment_ended_is_the_edge(store: LocalDiskStore) -> None:
    _write(store, partial_path(CAM, T0), 3)
    state = LiveState([_last()])
    add_edge(store, CAM, _last(), state, T0 + timedelta(seconds=2))
    assert state.edge is not None and (state.edge.seq, state.edge.start, state.edge.new_session) == (42, T0, False)
    assert [p.independent for p in state.edge.parts.parts] == [True, False, False]
    assert state.edge.parts.uri == "parts/20261122T045956.000000Z.mp4"
    assert state.watch is not None and not state.changed()
    _write(store, partial_path(CAM, T0), 4)  # the recorder appended a part
    assert state.changed()


def test_a_segment_published_but_not_indexed_yet_is_listed_and_looked_at_again_soon(store: LocalDiskStore) -> None:
    _write(store, segment_path(CAM, T0), 5)
    state = LiveState([_last()])
    add_edge(store, CAM, _last(), state, T0 + timedelta(seconds=5))
    assert state.edge is not None and len(state.edge.parts.parts) == 5 and state.transient
    assert state.watch is None


def test_a_new_connection_is_found_by_its_partial_even_in_the_next_hour(store: LocalDiskStore) -> None:
    old = T0 + timedelta(seconds=1)  # a stale partial of an earlier start is not it
    new = T0 + timedelta(seconds=6)  # after the reconnection, in the next hour's folder
    _write(store, partial_path(CAM, old), 1)
    _write(store, partial_path(CAM, new), 2)
    _write(store, partial_path(CAM + 1, new + timedelta(seconds=1)), 2)  # another camera's
    state = LiveState([_last()])
    add_edge(store, CAM, _last(), state, new + timedelta(seconds=1))
    assert state.edge is not None and (state.edge.start, state.edge.new_session) == (new, True)
    assert state.edge.init_length > 0 and len(state.edge.parts.parts) == 2


def test_no_file_in_progress_no_edge(store: LocalDiskStore) -> None:
    state = LiveState([_last()])
    add_edge(store, CAM, _last(), state, T0 + timedelta(seconds=30))
    assert state.edge is None and state.watch is None and not state.transient
