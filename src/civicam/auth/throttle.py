"""Sign-in throttling: per account and per client address, exponential lock-outs, bounded memory. No I/O.

Every failed sign-in costs an argon2 hash and an audit row under the audit log's write lock, so unthrottled
guessing slows every audited write of the hub. After ``free`` failures in a row a key (an account or an
address) is locked for ``base_s``, doubling with each further failure up to ``max_s``; an attempt on a
locked key is refused before any password is checked and is not audited. The lock-out itself is reported
once (``Outcome.locked``), when the key first locks, not on each refused attempt.

A success clears its account's failures but not its address's: one valid account must not let an address
reset its count between guesses. Attempts in flight count against the limit, so parallel requests cannot
all slip in before the first failure is counted. Memory is bounded: at most ``max_keys`` keys are kept,
the least recently used forgotten first, and a key is forgotten ``forget_s`` after its last failure.

The trade-off is known: whoever knows a username can lock that account out for up to ``max_s`` at a time;
the address limit makes that cost them their own address too.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

ACCOUNT_FREE = 5
ADDRESS_FREE = 20
BASE_S = 1.0
MAX_S = 900.0
FORGET_S = 3600.0
MAX_KEYS = 10_000


@dataclass
class _State:
    failures: int = 0
    pending: int = 0
    locked_until: float = 0.0
    last: float = 0.0
    reported: bool = False


@dataclass(frozen=True)
class Limit:
    """How many failures in a row a kind of key may have before it is locked."""

    free: int
    base_s: float = BASE_S
    max_s: float = MAX_S

    def lock_s(self, failures: int) -> float:
        """Seconds a key with ``failures`` failures in a row stays locked (0 below the limit). Pure."""
        if failures < self.free:
            return 0.0
        return float(min(self.max_s, self.base_s * 2.0 ** min(failures - self.free, 64)))


@dataclass(frozen=True)
class Ticket:
    """A sign-in attempt let through: the keys it holds a place on until ``LoginThrottle.finish``."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What a finished attempt changed: the keys that locked now for the first time (to audit once)."""

    locked: tuple[str, ...] = ()
    lock_s: dict[str, float] = field(default_factory=dict)


class Throttled(Exception):
    """The attempt is refused without a password check; ``retry_after_s`` says when to try again."""

    def __init__(self, retry_after_s: float, keys: tuple[str, ...]) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s:.0f} s")
        self.retry_after_s, self.keys = retry_after_s, keys


def keys_for(username: str, address: str) -> tuple[str, str]:
    return f"user:{username[:100]}", f"addr:{address[:64]}"


class LoginThrottle:
    """One per hub process; thread-safe (sign-ins run on the server's thread pool)."""

    def __init__(self, account: Limit = Limit(ACCOUNT_FREE), address: Limit = Limit(ADDRESS_FREE),
                 max_keys: int = MAX_KEYS, forget_s: float = FORGET_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = {"user": account, "addr": address}
        self._max_keys, self._forget_s, self._clock = max_keys, forget_s, clock
        self._keys: OrderedDict[str, _State] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def _limit(self, key: str) -> Limit:
        return self._limits[key.split(":", 1)[0]]

    def _state(self, key: str, now: float) -> _State:
        st = self._keys.get(key)
        if st is not None and st.pending == 0 and now - st.last > self._forget_s and st.locked_until <= now:
            st = None  # long quiet: forgiven
        if st is None:
            st = self._keys[key] = _State(last=now)
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key)
        return st

    def begin(self, username: str, address: str) -> Ticket:
        """Let an attempt through, or raise ``Throttled`` (nothing is counted for a refused attempt)."""
        keys = keys_for(username, address)
        with self._lock:
            now = self._clock()
            states = [self._state(k, now) for k in keys]
            waits = [max(st.locked_until - now, 0.0) for st in states]
            # In flight: below the limit as many as it has left; at or past it, one at a time once unlocked.
            full = [st.pending >= max(1, self._limit(k).free - st.failures) for k, st in zip(keys, states, strict=True)]
            if any(w > 0 for w in waits) or any(full):
                blocked = tuple(k for k, w, f in zip(keys, waits, full, strict=True) if w > 0 or f)
                raise Throttled(max([*waits, 1.0]), blocked)
            for st in states:
                st.pending += 1
            return Ticket(keys)

    def finish(self, ticket: Ticket, ok: bool) -> Outcome:
        """Count the attempt's result; a success clears its account's failures (not its address's)."""
        locked: list[str] = []
        lock_s: dict[str, float] = {}
        with self._lock:
            now = self._clock()
            for key in ticket.keys:
                st = self._keys.get(key)
                if st is None:  # evicted meanwhile under memory pressure
                    st = self._state(key, now)
                else:
                    st.pending = max(0, st.pending - 1)
                if ok:
                    if key.startswith("user:"):
                        self._keys.pop(key, None)
                    continue
                st.failures += 1
                st.last = now
                seconds = self._limit(key).lock_s(st.failures)
                if seconds > 0:
                    st.locked_until = now + seconds
                    lock_s[key] = seconds
                    if not st.reported:
                        st.reported = True
                        locked.append(key)
        return Outcome(tuple(locked), lock_s)
