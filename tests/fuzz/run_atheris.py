"""Coverage-guided fuzzing of one target with atheris (``make fuzz``): crashes land in the corpus.

Usage: python tests/fuzz/run_atheris.py TARGET [libFuzzer flags, e.g. -max_total_time=60]
A crash input is written as tests/fuzz/corpus/TARGET/crash-<sha1>, which tests/fuzz/test_corpus.py
replays from then on (fix the parser, keep the file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, so ``fuzz.targets`` imports as under pytest

# Coverage of civicam's own parsers only: instrumenting every library they import (SQLAlchemy, PyAV)
# takes minutes and guides nothing.
with atheris.instrument_imports(include=["civicam"]):
    from fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: run_atheris.py {{{'|'.join(TARGETS)}}} [libFuzzer flags]")
    name = sys.argv[1]
    corpus = HERE / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    target = TARGETS[name]
    atheris.Setup([sys.argv[0], f"-artifact_prefix={corpus}/", *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
