"""Every crash the fuzzers found, kept as a regression input and replayed against its target."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.targets import TARGETS

CORPUS = Path(__file__).with_name("corpus")
CASES = sorted(p for p in CORPUS.glob("*/*") if p.is_file())


def test_corpus_targets_exist() -> None:
    assert CASES, "the corpus holds the crashes found so far"
    for case in CASES:
        assert case.parent.name in TARGETS, case


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_regression_input(case: Path) -> None:
    TARGETS[case.parent.name](case.read_bytes())
