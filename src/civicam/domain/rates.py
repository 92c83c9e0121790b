"""A token bucket: how much of something may happen per second, with a burst allowance. Pure (time is passed in)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    rate: float
    burst: float
    _tokens: float = field(init=False)
    _at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._tokens = self.burst

    def _refill(self, now: float) -> None:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = now

    def take(self, amount: float, now: float) -> bool:
        """Spend ``amount`` tokens if there are that many (nothing is spent otherwise)."""
        self._refill(now)
        if amount > self._tokens:
            return False
        self._tokens -= amount
        return True

    def wait_s(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` tokens are there (0 if they are now; inf if it exceeds the burst)."""
        self._refill(now)
        if amount > self.burst:
            return float("inf")
        return max(0.0, (amount - self._tokens) / self.rate)
