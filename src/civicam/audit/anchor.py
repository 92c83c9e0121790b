"""The audit log anchored outside the database: the signing key, checkpoint files, and verification that
uses them (in full against an auditor's checkpoints, or incrementally from the hub's last one).

The Ed25519 key comes from the settings (``CIVICAM_AUDIT_SIGNING_KEY``, PEM) or from
``<data_dir>/secrets/audit-signing.pem`` (made, mode 0600, on first use): never from the database, so
whoever can only write the database cannot sign a rewritten log. A running hub signs the head every
``audit_checkpoint_interval_s`` into ``<data_dir>/audit/checkpoints`` after verifying the entries since
its previous checkpoint; ``civicam audit checkpoint --out DIR`` writes one where an auditor keeps it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from civicam.audit.chain import GENESIS, Entry, Problem, verify
from civicam.audit.checkpoint import Checkpoint, CheckpointError, against_log, parse, sign, signed_by
from civicam.audit.log import _entry
from civicam.config.settings import Settings
from civicam.db.base import utcnow
from civicam.db.models import AuditEvent, AuditHead
from civicam.db.session import Database

KEY_FILE = Path("secrets") / "audit-signing.pem"
CHECKPOINTS = Path("audit") / "checkpoints"
PUBLIC_KEY_FILE = "audit-public-key.pem"


def signing_key(settings: Settings, create: bool = True) -> Ed25519PrivateKey:
    """The hub's checkpoint key: from the settings, else the key file, made if missing and ``create``."""
    if settings.audit_signing_key:
        return _private(settings.audit_signing_key.encode())
    path = settings.data_dir / KEY_FILE
    if path.exists():
        return _private(path.read_bytes())
    if not create:
        raise FileNotFoundError(f"no audit signing key at {path}")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:  # O_EXCL: two processes starting at once must not write two different keys
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _private(path.read_bytes())
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def _private(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the audit signing key is not an Ed25519 key")
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


# Checkpoint files ------------------------------------------------------------------------------------------


def write(cp: Checkpoint, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / cp.file_name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cp.to_json(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Loaded:
    checkpoints: list[Checkpoint]
    problems: list[Problem]


def load(folder: Path, public: Ed25519PublicKey) -> Loaded:
    """The genuinely signed checkpoints in ``folder``; a file that is not one, or is not signed by the key,
    is a problem (somebody put it there), never trusted."""
    found: list[Checkpoint] = []
    problems: list[Problem] = []
    for path in sorted(folder.glob("checkpoint-*.json")):
        try:
            cp = parse(path.read_bytes())
        except CheckpointError as exc:
            problems.append(Problem(0, f"{path.name}: {exc}"))
            continue
        if not signed_by(public, cp):
            problems.append(Problem(cp.seq, f"{path.name}: the signature does not match the public key"))
            continue
        found.append(cp)
    return Loaded(found, problems)


# Verification ----------------------------------------------------------------------------------------------


def _head(session: Session) -> tuple[int, str]:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    return (head.seq, head.hash) if head else (0, GENESIS)


def _entries(session: Session, after_id: int) -> Iterator[Entry]:
    rows = session.execute(select(AuditEvent).where(AuditEvent.id > after_id).order_by(AuditEvent.id)
                           .execution_options(yield_per=1000)).scalars()
    for ev in rows:
        yield _entry(ev)


@dataclass(frozen=True)
class Verified:
    entries: int  # entries walked
    last_id: int  # the log's last entry
    head_hash: str
    problems: list[Problem]
    since: int = 0  # the walk started after this entry (a checkpoint), 0 for the whole log


def verify_with(session: Session, checkpoints: list[Checkpoint]) -> Verified:
    """The whole chain walked, and checked against signed ``checkpoints``: catches a log rewritten,
    reordered or truncated even when every hash and the head were recomputed."""
    wanted = {cp.seq for cp in checkpoints}
    hashes: dict[int, str] = {}
    count, last_id, last_hash = 0, 0, GENESIS

    def walk() -> Iterator[Entry]:
        nonlocal count, last_id, last_hash
        for e in _entries(session, 0):
            count += 1
            last_id, last_hash = e.id, e.hash
            if e.id in wanted:
                hashes[e.id] = e.hash
            yield e

    head_seq, head_hash = _head(session)
    problems = verify(walk(), head_seq, head_hash)
    problems += against_log(checkpoints, hashes, last_id)
    return Verified(count, last_id, last_hash, problems)


def verify_since(session: Session, cp: Checkpoint | None) -> Verified:
    """The entries after checkpoint ``cp`` (already verified when it was signed), and that the log still has
    the signed entry there: the cost is the entries since, not the whole log."""
    head_seq, head_hash = _head(session)
    after_id, after_hash, problems = 0, GENESIS, []
    if cp is not None and cp.seq > 0:
        stored = session.get(AuditEvent, cp.seq)
        problems = against_log([cp], {cp.seq: stored.hash} if stored else {}, cp.seq if stored else head_seq)
        after_id, after_hash = cp.seq, cp.hash
    count, last_id, last_hash = 0, after_id, after_hash

    def walk() -> Iterator[Entry]:
        nonlocal count, last_id, last_hash
        for e in _entries(session, after_id):
            count += 1
            last_id, last_hash = e.id, e.hash
            yield e

    problems += verify(walk(), head_seq, head_hash, after_id, after_hash)
    return Verified(count, last_id, last_hash, problems, since=after_id)


def latest(folder: Path, public: Ed25519PublicKey) -> Checkpoint | None:
    """The newest genuinely signed checkpoint in ``folder`` (the hub's own), if any."""
    if not folder.is_dir():
        return None
    good = load(folder, public).checkpoints
    return max(good, key=lambda c: (c.seq, c.ts)) if good else None


def own_folder(settings: Settings) -> Path:
    return settings.data_dir / CHECKPOINTS


def checkpoint(db: Database, settings: Settings, out: Path | None = None) -> tuple[Checkpoint | None, Verified]:
    """Verify the entries since the hub's last checkpoint and, if the chain holds, sign its head into the
    hub's folder (and ``out``): (the checkpoint or None when the chain is broken, the verification)."""
    key = signing_key(settings)
    folder = own_folder(settings)
    with db.session() as session:
        result = verify_since(session, latest(folder, key.public_key()))
    if result.problems:
        return None, result
    cp = sign(key, result.last_id, result.head_hash, utcnow().isoformat(timespec="microseconds"))
    write(cp, folder)
    if out is not None:
        write(cp, out)
        (out / PUBLIC_KEY_FILE).write_bytes(public_pem(key))
    return cp, result


class Checkpointer:
    """Signs the audit head every ``interval_s`` while the hub runs (start()/close())."""

    def __init__(self, db: Database, settings: Settings, logger: logging.Logger) -> None:
        self._db, self._settings, self._log = db, settings, logger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.audit_checkpoint_interval_s):
            try:
                cp, result = checkpoint(self._db, self._settings)
                if cp is None:
                    self._log.error("audit chain broken, checkpoint not signed: %s",
                                    "; ".join(p.message for p in result.problems[:5]))
            except Exception:  # noqa: BLE001 — a failed checkpoint is logged; the next one tries again
                self._log.exception("audit checkpoint failed")


# A page view that walked this many entries since the last checkpoint signs a new one, so the next view
# walks few: the audit page's cost is bounded by this plus what was logged since, never the whole log.
RESIGN_AFTER = 1000


def verify_for_view(session: Session, settings: Settings) -> tuple[int, list[Problem]]:
    """(entries in the log, problems) for a page that shows the chain's state on every view: verified
    from the hub's last signed checkpoint (civicam.audit.anchor), not from the first entry."""
    key = signing_key(settings)
    folder = own_folder(settings)
    result = verify_since(session, latest(folder, key.public_key()))
    if not result.problems and result.entries >= RESIGN_AFTER:
        write(sign(key, result.last_id, result.head_hash, utcnow().isoformat(timespec="microseconds")), folder)
    return result.last_id, result.problems
