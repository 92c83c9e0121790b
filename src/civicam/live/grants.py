"""Signed, expiring grants that let one user's player fetch one camera's video unblurred, for one view only.

The reason is stated and audited once, when the view starts; the grant then rides on the playlist's
segment URLs, so the permission is re-checked on every fetch without asking for the reason again.

A grant is bound to what was opened, not only to user and camera: its kind (``live`` or ``playback``)
and the interval it covers. A live view's grant covers the live window as it was when the view started
and what is recorded after it, until the grant expires; a playback grant covers the requested interval
only. So one audited live view cannot open last week's segments, and the audit entry of a view says
exactly what it opened.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

GRANT_TTL_S = 4 * 3600
KINDS = ("live", "playback")


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def _ms(t: datetime, up: bool) -> int:
    value = t.timestamp() * 1000
    return math.ceil(value) if up else math.floor(value)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class Grant:
    """What a valid grant lets its holder see unblurred: one camera, one kind of view, ``[start, end)``."""

    user_id: int
    camera_id: int
    kind: str
    start: datetime
    end: datetime
    expires: float

    def covers(self, kind: str, start: datetime, end: datetime, whole: bool = False) -> bool:
        """Whether ``[start, end]`` of this kind is in the grant: overlapping it (a segment the interval
        needs), or lying wholly inside it with ``whole`` (a playlist of an interval). Pure."""
        if kind != self.kind:
            return False
        if whole:
            return self.start <= start and end <= self.end
        return (start < self.end and end > self.start) or (start == end and self.start <= start <= self.end)


def issue(key: bytes, user_id: int, camera_id: int, kind: str, start: datetime, end: datetime,
          now: float | None = None, ttl_s: int = GRANT_TTL_S) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown grant kind {kind!r}")
    body = (f"{user_id}.{camera_id}.{kind}.{_ms(start, up=False)}.{_ms(end, up=True)}"
            f".{int((now or time.time()) + ttl_s)}")
    return f"{body}.{_mac(key, body)}"


def read(key: bytes, grant: str, user_id: int, camera_id: int, now: float | None = None) -> Grant | None:
    """The grant, if it is untampered, unexpired and this user's for this camera; else None."""
    try:
        uid, cid, kind, t0, t1, exp, mac = grant.split(".")
        body = f"{uid}.{cid}.{kind}.{t0}.{t1}.{exp}"
        if not hmac.compare_digest(mac.encode(), _mac(key, body).encode()):
            return None
        found = Grant(int(uid), int(cid), kind, _at(int(t0)), _at(int(t1)), float(exp))
    except (ValueError, OverflowError, OSError):
        return None
    if found.user_id != user_id or found.camera_id != camera_id or found.expires <= (now or time.time()):
        return None
    return found
