"""Signed ids of the onboarding wizard's probe jobs: any API process can answer them, not only the one
running them.

The job id carries what another process needs, signed with a key derived from the hub's: the camera, the
user and when the probe started. The process running the probe answers from memory (live progress);
any other reads the outcome from the database, where every probe's report is stored (``probes``), so a
wizard whose polls reach another process of the tier still sees its probe finish.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

PURPOSE = "probe-job"


@dataclass(frozen=True)
class JobRef:
    camera_id: int
    user_id: int
    started: datetime  # UTC, millisecond precision


def _mac(key: bytes, body: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()[:12]).decode()


def job_id(key: bytes, ref: JobRef) -> str:
    """``camera.user.started_ms.mac``.

    >>> job_id(b"k", JobRef(3, 7, datetime(2026, 12, 1, tzinfo=UTC))).startswith("3.7.1796083200000.")
    True
    """
    body = f"{ref.camera_id}.{ref.user_id}.{int(ref.started.timestamp() * 1000)}"
    return f"{body}.{_mac(key, body)}"


def parse(key: bytes, value: str) -> JobRef | None:
    """The job an id names, or None when it is malformed or not signed with ``key``."""
    parts = value.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]) or len(value) > 100:
        return None
    body = ".".join(parts[:3])
    if not hmac.compare_digest(parts[3], _mac(key, body)):
        return None
    return JobRef(int(parts[0]), int(parts[1]), datetime.fromtimestamp(int(parts[2]) / 1000, UTC))


def lost(started: datetime, now: datetime, seconds: float, timeout_s: float) -> bool:
    """Whether a probe with no stored report is past any time it could still take (then it is reported
    failed: the process running it stopped). A probe reads ``seconds`` of media after connecting, and each
    network step has ``timeout_s``; a minute of slack covers a loaded machine.

    >>> t = datetime(2026, 12, 1, tzinfo=UTC)
    >>> lost(t, t.replace(minute=1), 5, 8), lost(t, t.replace(minute=2), 5, 8)
    (False, True)
    """
    return (now - started).total_seconds() > seconds + 3 * timeout_s + 60
