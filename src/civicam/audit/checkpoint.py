"""Signed checkpoints of the audit chain: the head (entry number and hash) signed with Ed25519. Pure.

The hash chain alone proves nothing to whoever can write the database: they can rewrite, reorder or cut
the log and recompute every hash and the head. A checkpoint is signed with a key the database does not
hold (civicam.audit.anchor) and kept by an auditor outside the hub; a log that no longer has, at entry
``seq``, the hash a checkpoint signed was rewritten or reordered at or before ``seq``, and a log shorter
than ``seq`` was truncated, however well its hashes were recomputed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from civicam.audit.chain import Problem

VERSION = 1
_HEX = frozenset("0123456789abcdef")


class CheckpointError(ValueError):
    """A checkpoint file that is not one (bad JSON, missing or ill-typed fields)."""


@dataclass(frozen=True)
class Checkpoint:
    """The chain head at one moment: entry ``seq`` (0: the empty log) has ``hash``; ``ts`` is when (UTC)."""

    seq: int
    hash: str
    ts: str
    signature: str = ""

    def body(self) -> bytes:
        """The signed bytes: a canonical JSON of everything but the signature."""
        return json.dumps({"v": VERSION, "seq": self.seq, "hash": self.hash, "ts": self.ts}, sort_keys=True,
                          separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "seq": self.seq, "hash": self.hash, "ts": self.ts, "signature": self.signature}

    @property
    def file_name(self) -> str:
        return f"checkpoint-{self.seq:012d}.json"


def sign(key: Ed25519PrivateKey, seq: int, hash_: str, ts: str) -> Checkpoint:
    unsigned = Checkpoint(seq, hash_, ts)
    return Checkpoint(seq, hash_, ts, base64.b64encode(key.sign(unsigned.body())).decode())


def signed_by(public: Ed25519PublicKey, cp: Checkpoint) -> bool:
    try:
        public.verify(base64.b64decode(cp.signature, validate=True), cp.body())
    except (InvalidSignature, ValueError):
        return False
    return True


def parse(data: bytes | str) -> Checkpoint:
    """A checkpoint from its JSON file; ``CheckpointError`` says what is wrong with a bad one."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        raise CheckpointError(f"not a version {VERSION} checkpoint")
    seq, hash_, ts, sig = obj.get("seq"), obj.get("hash"), obj.get("ts"), obj.get("signature")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise CheckpointError("'seq' must be a whole number >= 0")
    if not isinstance(hash_, str) or len(hash_) != 64 or not set(hash_) <= _HEX:
        raise CheckpointError("'hash' must be 64 lower-case hex digits")
    if not isinstance(ts, str) or not isinstance(sig, str):
        raise CheckpointError("'ts' and 'signature' must be strings")
    return Checkpoint(seq, hash_, ts, sig)


def against_log(checkpoints: Iterable[Checkpoint], hashes: Mapping[int, str], last_id: int) -> list[Problem]:
    """What the log contradicts: ``hashes`` are the log's hashes at the checkpoints' entries (as stored
    now), ``last_id`` its last entry. Checkpoints must already be known to be genuinely signed."""
    problems: list[Problem] = []
    ordered = sorted(checkpoints, key=lambda c: (c.ts, c.seq))
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if later.seq < earlier.seq:
            problems.append(Problem(later.seq, f"checkpoint of {later.ts} names entry {later.seq}, before the "
                                    f"{earlier.seq} of {earlier.ts}: the log was cut and rewritten between them"))
    for cp in ordered:
        if cp.seq == 0:
            continue
        if cp.seq > last_id:
            problems.append(Problem(cp.seq, f"the log ends at entry {last_id} but was signed at entry {cp.seq} "
                                    f"({cp.ts}): entries were removed (truncated)"))
        elif hashes.get(cp.seq) != cp.hash:
            problems.append(Problem(cp.seq, f"entry {cp.seq} is not the one signed at {cp.ts}: the log was "
                                    "rewritten or reordered at or before it"))
    return problems
