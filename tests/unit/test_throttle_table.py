"""The sign-in throttle as a pure table: exponential lock-outs, audit once, in-flight attempts, bounded memory."""

from __future__ import annotations

import pytest

from civicam.auth.throttle import Limit, LoginThrottle, Throttled


class Clock:
    """A clock the test moves by hand (the throttle takes its clock as a parameter)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(t: LoginThrottle, user: str = "ann", addr: str = "10.0.0.1") -> tuple[str, ...]:
    return t.finish(t.begin(user, addr), ok=False).locked


@pytest.mark.parametrize(("failures", "seconds"), [(0, 0), (2, 0), (3, 1), (4, 2), (5, 4), (8, 32), (20, 60), (99, 60)])
def test_lock_time_doubles_from_the_limit_up_to_the_cap(failures: int, seconds: float) -> None:
    assert Limit(free=3, base_s=1, max_s=60).lock_s(failures) == seconds


def test_an_account_locks_after_its_free_failures_and_is_reported_once() -> None:
    clock = Clock()
    t = LoginThrottle(Limit(3), Limit(100), clock=clock)
    assert _fail(t) == () and _fail(t) == ()
    assert _fail(t) == ("user:ann",)  # the third failure locks it: reported
    with pytest.raises(Throttled) as locked:
        t.begin("ann", "10.0.0.9")  # from any address
    assert locked.value.keys == ("user:ann",) and 0 < locked.value.retry_after_s <= 1
    assert t.begin("bob", "10.0.0.1").keys == ("user:bob", "addr:10.0.0.1")  # another account: not locked
    clock.now += 1.01
    assert _fail(t) == ()  # locked again, for longer, but not reported again
    with pytest.raises(Throttled) as again:
        t.begin("ann", "10.0.0.1")
    assert 1.5 < again.value.retry_after_s <= 2


def test_success_clears_the_account_but_not_the_address() -> None:
    clock = Clock()
    t = LoginThrottle(Limit(3), Limit(4), clock=clock)
    for user in ("a", "b", "c"):
        _fail(t, user)
    t.finish(t.begin("d", "10.0.0.1"), ok=True)  # one valid account does not reset the address
    assert _fail(t, "e") == ("addr:10.0.0.1",)
    with pytest.raises(Throttled):
        t.begin("d", "10.0.0.1")
    _fail(t, "x", "10.0.0.2")
    _fail(t, "x", "10.0.0.2")
    t.finish(t.begin("x", "10.0.0.3"), ok=True)
    assert _fail(t, "x", "10.0.0.4") == ()  # the account's count started again after its success


def test_parallel_attempts_cannot_all_slip_in_before_the_first_failure_counts() -> None:
    t = LoginThrottle(Limit(3), Limit(100), clock=Clock())
    tickets = [t.begin("ann", f"10.0.0.{i}") for i in range(3)]
    with pytest.raises(Throttled):
        t.begin("ann", "10.0.0.9")  # three in flight already: the limit
    for ticket in tickets:
        t.finish(ticket, ok=False)
    with pytest.raises(Throttled):
        t.begin("ann", "10.0.0.9")


def test_memory_is_bounded_and_quiet_keys_are_forgiven() -> None:
    clock = Clock()
    t = LoginThrottle(Limit(3), Limit(3), max_keys=50, forget_s=60, clock=clock)
    for i in range(1000):
        _fail(t, f"user{i}", f"10.1.{i // 256}.{i % 256}")
    assert len(t) <= 50
    for _ in range(3):
        _fail(t, "ann", "10.0.0.1")
    clock.now += 61 + 1  # lock expired and quiet for longer than forget_s
    assert _fail(t, "ann", "10.0.0.1") == ()  # a fresh count: one failure locks nothing
