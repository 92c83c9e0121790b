"""Whether an external service a test needs is here: skip on a laptop, fail under CI."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
MISSING = " is not available on this machine"  # the tail of every skip reason ``require`` gives


def require(available: bool, what: str) -> None:
    """Skip on a laptop that lacks ``what``; fail under CI, where a missing service is a broken set-up."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI but is not available")
    pytest.skip(f"{what}{MISSING}")
