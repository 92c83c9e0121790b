"""The pure hash-chain: a clean chain verifies; every kind of tampering is named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from civicam.audit.chain import GENESIS, Entry, entry_hash, verify


def chain(n: int) -> list[Entry]:
    out: list[Entry] = []
    prev = GENESIS
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        e = Entry(i, t0 + timedelta(seconds=i), "alice", "camera.create", "camera", str(i), "10.0.0.1",
                  {"n": i}, prev)
        e = replace(e, hash=entry_hash(e))
        out.append(e)
        prev = e.hash
    return out


def test_clean_chain_verifies() -> None:
    entries = chain(5)
    assert verify(entries, 5, entries[-1].hash) == []


def test_empty_chain_verifies() -> None:
    assert verify([], 0, GENESIS) == []


@pytest.mark.parametrize(
    ("tamper", "bad_id", "words"),
    [
        (lambda es: [replace(es[0], actor="mallory")] + es[1:], 1, "edited"),
        (lambda es: es[:2] + [replace(es[2], detail={"n": 99})] + es[3:], 3, "edited"),
        (lambda es: es[:2] + es[3:], 4, "missing"),
        (lambda es: es[:1] + [replace(e, id=e.id - 1) for e in es[2:]], 2, "predecessor"),
    ],
    ids=["edit-first", "edit-middle", "delete-middle", "delete-and-renumber"],
)
def test_tampering_is_found(tamper, bad_id: int, words: str) -> None:  # type: ignore[no-untyped-def]
    entries = chain(5)
    problems = verify(tamper(entries), 5, entries[-1].hash)
    assert problems, "tampering went unnoticed"
    assert any(p.id == bad_id and words in p.message for p in problems), problems


def test_deleting_the_newest_entries_is_found_through_the_head() -> None:
    entries = chain(5)
    problems = verify(entries[:3], 5, entries[-1].hash)
    assert [p.id for p in problems] == [5]
