"""Signed, expiring grants that let one user's player fetch one camera's segments unblurred.

The reason is stated and audited once, when the view starts; the grant then rides on the playlist's
segment URLs, so the permission is re-checked on every fetch without asking for the reason again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

GRANT_TTL_S = 4 * 3600


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def issue(key: bytes, user_id: int, camera_id: int, now: float | None = None, ttl_s: int = GRANT_TTL_S) -> str:
    body = f"{user_id}.{camera_id}.{int((now or time.time()) + ttl_s)}"
    return f"{body}.{_mac(key, body)}"


def valid(key: bytes, grant: str, user_id: int, camera_id: int, now: float | None = None) -> bool:
    """True only for an untampered, unexpired grant of this user for this camera."""
    try:
        uid, cid, exp, mac = grant.split(".")
    except ValueError:
        return False
    body = f"{uid}.{cid}.{exp}"
    if not hmac.compare_digest(mac, _mac(key, body)):
        return False
    return uid == str(user_id) and cid == str(camera_id) and int(exp) > (now or time.time())
