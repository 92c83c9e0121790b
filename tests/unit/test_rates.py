"""The token bucket that bounds relayed pushes, against hand-computed budgets."""

from __future__ import annotations

import math

import pytest

from civicam.domain.rates import TokenBucket


def test_burst_then_rate() -> None:
    b = TokenBucket(rate=2.0, burst=3.0)
    assert [b.take(1, 0.0) for _ in range(4)] == [True, True, True, False]  # the burst, then empty
    assert b.wait_s(1, 0.0) == pytest.approx(0.5)
    assert not b.take(1, 0.4)  # 0.8 tokens after 0.4 s at 2/s
    assert b.take(1, 0.5)  # 1.0 token after 0.5 s (the failed take spent nothing)
    assert b.take(3, 10.0) and not b.take(0.5, 10.0), "refill stops at the burst"


def test_amount_over_burst_never_fits() -> None:
    b = TokenBucket(rate=100.0, burst=10.0)
    assert math.isinf(b.wait_s(11, 0.0)) and not b.take(11, 1e6)
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


def test_time_going_backwards_adds_nothing() -> None:
    b = TokenBucket(rate=1.0, burst=1.0)
    assert b.take(1, 5.0)
    assert not b.take(1, 4.0)
