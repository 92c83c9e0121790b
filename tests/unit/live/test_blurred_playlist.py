"""The blurred LL-HLS playlist's discontinuity sequence and preload hint, checked as a player reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civicam.live import hls
from civicam.live.blurred_live import KEPT, BlurredFile
from support.playlist_rules import check, hint_follows_last_part

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
INIT, PART, PARTS = 600, 1000, 10  # init section bytes, bytes a part, parts a complete file (0.4 s each)


def _file(seq: int, new_session: bool, parts: int = PARTS, complete: bool = True) -> BlurredFile:
    f = BlurredFile(seq, T0 + timedelta(seconds=4 * seq), f"{seq:04d}.mp4", new_session, init_length=INIT)
    f.parts = [hls.Part(INIT + PART * k, PART, 0.4, k % 5 == 0) for k in range(parts)]
    f.complete = complete
    return f


def _playlist(files: list[BlurredFile], discontinuity_sequence: int = 0) -> str:
    return hls.file_playlist(files, prefix="blurred/full/", target_s=4, part_target_s=0.4,
                             discontinuity_sequence=discontinuity_sequence)


def test_the_file_in_progress_gets_a_hint_for_its_next_part() -> None:
    files = [_file(7, True), _file(8, False), _file(9, False, parts=3, complete=False)]
    parsed = check(_playlist(files))
    assert parsed.problems == []
    assert parsed.hints == [{"TYPE": "PART", "URI": "blurred/full/0009.mp4",
                             "BYTERANGE-START": str(INIT + 3 * PART)}]
    assert hint_follows_last_part(parsed)
    assert parsed.segments == 2 and len(parsed.parts) == 2 * PARTS + 3


@pytest.mark.parametrize("files", [
    [_file(7, True), _file(8, False)],  # nothing in progress: the next file's name is not known yet
    [],
])
def test_no_hint_without_a_file_in_progress(files: list[BlurredFile]) -> None:
    parsed = check(_playlist(files))
    assert parsed.problems == [] and parsed.hints == []


@pytest.mark.parametrize(("count", "line"), [(0, None), (1, "#EXT-X-DISCONTINUITY-SEQUENCE:1"),
                                             (17, "#EXT-X-DISCONTINUITY-SEQUENCE:17")])
def test_discontinuity_sequence_is_announced_before_the_first_segment(count: int, line: str | None) -> None:
    text = _playlist([_file(3, True), _file(4, True), _file(5, False, parts=2, complete=False)], count)
    parsed = check(text)  # the checker refuses the tag after the first segment, or twice
    assert parsed.problems == [] and parsed.discontinuities == 1
    assert parsed.tags.get("EXT-X-DISCONTINUITY-SEQUENCE") == (line.split(":")[1] if line else None)
    assert (line in text.splitlines()) if line else "DISCONTINUITY-SEQUENCE" not in text


# Each pipeline's files: whether each starts a new timeline (its first always does). Between pipelines the
# viewer's blurred view restarted (a failure, or the lease ran out and a viewer came back).
PIPELINES = {
    "one timeline": [[True] + [False] * 11],
    "reconnections": [[True, False, False, True, False, True, True, False, False, False, True, False, False]],
    "skips and a restart": [[True, False, True, False, False, True, False], [True, True, False, False, False]],
    "three restarts": [[True, False], [True], [True, False, False, True, False, False, False, False]],
}


def _history(pipelines: list[list[bool]]) -> list[list[BlurredFile]]:
    """Each pipeline's files, in seqs that keep growing (a restart starts a little later)."""
    seq, out = 40, []
    for news in pipelines:
        out.append([_file(seq + k, new) for k, new in enumerate(news)])
        seq += len(news) + 3
    return out


@pytest.mark.parametrize("step", [1, 2, KEPT - 1])  # a fetch every file, or fewer (still inside the window)
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_discontinuity_sequence_matches_the_whole_history_as_the_window_slides(name: str, step: int) -> None:
    history = _history(PIPELINES[name])
    everything = [f for files in history for f in files]

    def oracle(seq: int) -> int:
        """Discontinuities a player saw from the very first file to ``seq``: every new timeline but the first."""
        return sum(1 for f in everything[1:] if f.new_session and f.seq <= seq)

    carried: hls.Carried | None = None
    seen: list[int] = []
    for files in history:
        # What a pipeline lists as it goes: its last KEPT files, the newest in progress (3 parts so far).
        for end in list(range(1, len(files) + 1, step)) + [len(files)]:
            window = files[max(0, end - KEPT):end]
            window = [*window[:-1], _file(window[-1].seq, window[-1].new_session, parts=3, complete=False)]
            carried = hls.carry_discontinuities(carried, window)
            # Another viewer fetching the same snapshot gets the same count.
            assert hls.carry_discontinuities(carried, window) == carried
            parsed = check(_playlist(window, carried.count))
            assert parsed.problems == [] and hint_follows_last_part(parsed)
            assert carried.count == oracle(window[0].seq), (end, window[0].seq)
            # A player adds the tags it sees to the sequence number: the same count as the whole history.
            assert carried.count + parsed.discontinuities == oracle(window[-1].seq)
            assert int(parsed.tags.get("EXT-X-DISCONTINUITY-SEQUENCE", "0")) == carried.count
            seen.append(carried.count)
    assert seen == sorted(seen)  # never decreasing


def test_a_count_starts_afresh_when_the_files_go_back_and_stays_put_without_files() -> None:
    first = hls.carry_discontinuities(None, [_file(50, True), _file(51, True), _file(52, False)])
    later = hls.carry_discontinuities(first, [_file(52, False), _file(53, False)])
    assert (first.count, later.count) == (0, 1)
    assert hls.carry_discontinuities(later, []) == later  # a pipeline between files keeps its count
    assert hls.carry_discontinuities(later, [_file(10, True)]).count == 0  # the index started over
