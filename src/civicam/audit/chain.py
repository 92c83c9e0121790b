"""Pure hash-chain arithmetic of the audit log: how an entry's hash is computed and how a chain is checked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """The fields of an audit event that the hash covers."""

    id: int
    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    source: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str = ""


def entry_hash(e: Entry) -> str:
    """SHA-256 over a canonical JSON of the entry and its predecessor's hash."""
    body = {
        "id": e.id,
        "ts": e.ts.isoformat(timespec="microseconds"),
        "actor": e.actor,
        "action": e.action,
        "object_type": e.object_type,
        "object_id": e.object_id,
        "source": e.source,
        "detail": e.detail,
        "prev": e.prev_hash,
    }
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Problem:
    id: int
    message: str


def verify(entries: Iterable[Entry], head_seq: int | None = None, head_hash: str | None = None,
           after_id: int = 0, after_hash: str = GENESIS) -> list[Problem]:
    """Every break in the chain: an edited entry, a deleted one (a gap or a wrong predecessor), a cut-off tail.

    ``head_seq``/``head_hash`` are what the chain head says the last entry is; they catch deleting the newest
    entries, which a walk over what is left could not see. ``after_id``/``after_hash`` start the walk after
    an entry already verified (a checkpoint), so ``entries`` are only those that follow it.
    """
    problems: list[Problem] = []
    expected_id, prev = after_id + 1, after_hash
    for e in entries:
        if e.id != expected_id:
            problems.append(Problem(e.id, f"entries {expected_id}..{e.id - 1} are missing (deleted)"))
        if e.prev_hash != prev:
            problems.append(
                Problem(e.id, "does not follow its predecessor (an entry before it was removed or altered)"))
        if entry_hash(e) != e.hash:
            problems.append(Problem(e.id, "content does not match its hash (the entry was edited)"))
        expected_id, prev = e.id + 1, e.hash
    if head_seq is not None and head_seq != expected_id - 1:
        problems.append(
            Problem(head_seq, f"the chain head names entry {head_seq} but the log ends at {expected_id - 1}"))
    elif head_hash is not None and head_hash != prev:
        problems.append(Problem(expected_id - 1, "the last entry does not match the chain head"))
    return problems
