"""The gateway's spool: finished segments waiting for upload, bounded by a quota, surviving any crash.

Files: ``segments/`` is a segment store in the hub's layout (the same recorder writes it, keyed by the
gateway's local camera number); next to each published segment a sidecar ``<segment>.json`` holds its
SHA-256, sequence number and index fields: a segment with a sidecar is ready to upload. ``gaps/`` holds gap
events not yet acknowledged by the hub, ``cameras.json`` the local numbers and each camera's next sequence
number, ``recorded.jsonl`` an append-only journal of every segment recorded (what the gateway claims it
had: tests check the hub against it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from civicam.domain.segments import (
    PARTIAL_SUFFIX,
    BadSegmentPath,
    SegmentDone,
    camera_prefix,
    parse_segment_path,
    published_path,
)
from civicam.storage.backend import LocalDiskStore
from civicam.storage.media import probe, repair

SIDECAR = ".json"


@dataclass(frozen=True)
class Spooled:
    """A finished segment in the spool, with what the hub needs to store and index it."""

    local_id: int
    path: str
    start: datetime
    end: datetime
    bytes: int
    sha256: str
    seq: int
    frames: int
    keyframes: int
    init_bytes: int
    codec: str
    width: int
    height: int
    session: str

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Spooled:
        return cls(**{**d, "start": datetime.fromisoformat(d["start"]), "end": datetime.fromisoformat(d["end"])})


QUOTA_GAP = "edge_quota"


@dataclass(frozen=True)
class GapEvent:
    """A stretch of one camera the hub has no segments for, not yet acknowledged by the hub: segments dropped
    for the quota (``edge_quota``, always closed), or the recorder's own gap (``stream_lost``...: the camera
    was lost), open (``end`` None) while it lasts and closed by the next segment recorded."""

    local_id: int
    start: datetime
    end: datetime | None
    reason: str = QUOTA_GAP
    detail: str = ""


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Spool:
    """Thread-safe: recorder threads add segments, upload lanes take and delete them, the quota drops the oldest."""

    def __init__(self, root: Path, quota_bytes: int, logger: logging.Logger,
                 on_change: Callable[[], None] | None = None) -> None:
        self.root = root
        self.quota_bytes = quota_bytes
        self._log = logger
        self._on_change = on_change or (lambda: None)
        root.mkdir(parents=True, exist_ok=True)
        (root / "gaps").mkdir(exist_ok=True)
        (root / "quarantine").mkdir(exist_ok=True)
        self.store = LocalDiskStore(root / "segments")
        self._segments = os.path.realpath(root / "segments")
        self._lock = threading.RLock()
        self._state_path = root / "cameras.json"
        self._state: dict[str, Any] = (json.loads(self._state_path.read_text()) if self._state_path.exists()
                                       else {"local": {}, "next_seq": {}, "hub": {}})
        self._ready: dict[int, dict[str, Spooled]] = {}
        self._in_flight: set[str] = set()
        self.dropped = 0

    # -- camera numbering and sequence ----------------------------------------------------------------

    def local_id(self, name: str) -> int:
        """A stable local number for a camera name (the spool's folder for it)."""
        with self._lock:
            local: dict[str, int] = self._state["local"]
            if name not in local:
                local[name] = max(local.values(), default=0) + 1
                self._save_state()
            return int(local[name])

    def hub_id(self, local_id: int) -> int | None:
        with self._lock:
            value = self._state["hub"].get(str(local_id))
            return int(value) if value is not None else None

    def set_hub_id(self, local_id: int, hub_id: int, hub_next_seq: int) -> None:
        """Remember the hub's camera id; sequence numbers continue after whatever the hub already has."""
        with self._lock:
            self._state["hub"][str(local_id)] = hub_id
            nxt = self._state["next_seq"]
            nxt[str(local_id)] = max(int(nxt.get(str(local_id), 0)), hub_next_seq)
            self._save_state()

    def _take_seq(self, local_id: int) -> int:
        nxt = self._state["next_seq"]
        seq = int(nxt.get(str(local_id), 0))
        nxt[str(local_id)] = seq + 1
        self._save_state()
        return seq

    def _save_state(self) -> None:
        _write_atomic(self._state_path, json.dumps(self._state))

    # -- adding ---------------------------------------------------------------------------------------

    def add(self, done: SegmentDone) -> Spooled:
        """A segment the recorder just published: digest it, write its sidecar and journal entry, apply the quota."""
        digest = sha256_file(self.store.local_path(done.path))
        with self._lock:
            self._close_recorder_gaps(done.camera_id, done.start)
            item = Spooled(done.camera_id, done.path, done.start, done.end, done.bytes, digest,
                           self._take_seq(done.camera_id), done.frames, done.keyframes, done.init_bytes, done.codec,
                           done.width, done.height, done.session)
            # Journal before sidecar: a crash between leaves a segment without a sidecar, which recovery
            # journals again (same path and digest), never an uploaded segment missing from the journal.
            with open(self.root / "recorded.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(item.to_json()) + "\n")
            self._write_sidecar(item)
            self._ready.setdefault(item.local_id, {})[item.path] = item
            self._apply_quota()
        self._on_change()
        return item

    def _write_sidecar(self, item: Spooled) -> None:
        _write_atomic(Path(self.store.local_path(item.path) + SIDECAR), json.dumps(item.to_json()))

    def recover(self) -> int:
        """After a crash: repair torn partials, give published segments without a sidecar one; load the rest."""
        count = 0
        with self._lock:
            for f in sorted(self.store.list(), key=lambda f: f.path):
                try:
                    key = parse_segment_path(f.path)
                except BadSegmentPath:
                    continue
                if key.partial:
                    final = published_path(f.path)
                    tmp = f.path.replace("Z.mp4.partial", "Z.fix.mp4.partial")
                    info = repair(self.store.local_path(f.path), self.store.spool(tmp)) if f.bytes > 0 else None
                    self.store.delete(f.path)
                    if info is None or info.frames == 0:
                        if info is not None:
                            self.store.delete(tmp)
                        continue
                    size = self.store.publish(tmp, final)
                    done = SegmentDone(key.camera_id, final, key.start, key.start + timedelta(seconds=info.duration_s),
                                       size, info.frames, info.keyframes, info.init_bytes, info.codec, info.width,
                                       info.height, "recovered")
                    self.add(done)
                    count += 1
                    continue
                sidecar = Path(self.store.local_path(f.path) + SIDECAR)
                if sidecar.exists():
                    item = Spooled.from_json(json.loads(sidecar.read_text()))
                    self._ready.setdefault(item.local_id, {})[item.path] = item
                    continue
                try:
                    info = probe(self.store.local_path(f.path))
                except Exception:  # noqa: BLE001  unreadable: keep it aside for a person, never upload it
                    self._quarantine(f.path)
                    continue
                self.add(SegmentDone(key.camera_id, f.path, key.start, key.start + timedelta(seconds=info.duration_s),
                                     f.bytes, info.frames, info.keyframes, info.init_bytes, info.codec, info.width,
                                     info.height, "recovered"))
                count += 1
        return count

    # -- quota ----------------------------------------------------------------------------------------

    def used(self) -> int:
        return self.store.usage().used

    def _apply_quota(self) -> None:
        while self.used() > self.quota_bytes:
            candidates = [s for per in self._ready.values() for s in per.values() if s.path not in self._in_flight]
            if len(candidates) <= 1:
                return  # keep the newest segment whatever the quota: it is the live view
            oldest = min(candidates, key=lambda s: s.start)
            self._remove(oldest)
            self.dropped += 1
            self._add_gap(oldest.local_id, oldest.start, oldest.end)
            self._log.warning("spool quota reached: dropped camera %s segment %s", oldest.local_id,
                              oldest.start.isoformat())

    def _gap_files(self, local_id: int) -> list[tuple[Path, dict[str, Any]]]:
        out = []
        for path in sorted((self.root / "gaps").glob(f"cam{local_id}-*.json")):
            try:
                out.append((path, json.loads(path.read_text())))
            except FileNotFoundError:
                continue
        return out

    def _add_gap(self, local_id: int, start: datetime, end: datetime) -> None:
        # Adjacent drops of one camera make one gap: extend the pending one that ends where this starts.
        for path, data in self._gap_files(local_id):
            if data.get("reason", QUOTA_GAP) != QUOTA_GAP:
                continue
            if abs(datetime.fromisoformat(data["end"]) - start) <= timedelta(milliseconds=1):
                data["end"] = end.isoformat()
                _write_atomic(path, json.dumps(data))
                return
        path = self.root / "gaps" / f"cam{local_id}-{start:%Y%m%dT%H%M%S%f}.json"
        _write_atomic(path, json.dumps({"local_id": local_id, "start": start.isoformat(), "end": end.isoformat()}))

    def recorder_gap(self, local_id: int, start: datetime, reason: str, detail: str) -> None:
        """The recorder lost the camera at ``start`` (``reason`` as the hub's recorder says it): an open gap,
        sent to the hub at once and again, closed, when the next segment is recorded. One open gap per
        camera: the first cause is kept, as on the hub."""
        with self._lock:
            for _path, data in self._gap_files(local_id):
                if data.get("reason", QUOTA_GAP) != QUOTA_GAP and data["end"] is None:
                    return
            path = self.root / "gaps" / f"cam{local_id}-{start:%Y%m%dT%H%M%S%f}-{reason}.json"
            _write_atomic(path, json.dumps({"local_id": local_id, "start": start.isoformat(), "end": None,
                                            "reason": reason, "detail": detail[:1000], "sent_open": False}))
        self._on_change()

    def _close_recorder_gaps(self, local_id: int, at: datetime) -> None:
        # The first segment after the camera came back ends the gap where it starts (never before its start).
        for path, data in self._gap_files(local_id):
            if data.get("reason", QUOTA_GAP) != QUOTA_GAP and data["end"] is None:
                start = datetime.fromisoformat(data["start"])
                data["end"] = max(at, start).isoformat()
                _write_atomic(path, json.dumps(data))

    def gaps(self, local_id: int) -> list[tuple[Path, GapEvent]]:
        """This camera's gap events the hub still needs: closed ones, and open ones it has not been told of."""
        with self._lock:
            out = []
            for path, d in self._gap_files(local_id):
                if d["end"] is None and d.get("sent_open"):
                    continue
                out.append((path, GapEvent(local_id, datetime.fromisoformat(d["start"]),
                                           datetime.fromisoformat(d["end"]) if d["end"] is not None else None,
                                           d.get("reason", QUOTA_GAP), d.get("detail", ""))))
            return out

    def gap_sent(self, path: Path, event: GapEvent) -> None:
        """The hub acknowledged the gap; drop it unless it grew or was closed meanwhile (then it is sent
        again). An open gap stays, marked sent, until its end is known."""
        with self._lock:
            try:
                d = json.loads(path.read_text())
            except FileNotFoundError:
                return
            end = datetime.fromisoformat(d["end"]) if d["end"] is not None else None
            if end != event.end:
                return
            if end is None:
                d["sent_open"] = True
                _write_atomic(path, json.dumps(d))
            else:
                path.unlink()

    # -- taking ---------------------------------------------------------------------------------------

    def in_progress(self, local_id: int) -> str | None:
        """The newest partial segment of a camera (the one its recorder writes now), or None.

        Walks the camera's folder: when nothing waits for upload it holds just that partial (delivered
        segments are deleted with their emptied folders), so this stays cheap where it is asked.
        """
        top = self.store.local_path(camera_prefix(local_id))
        best: str | None = None
        for dirpath, _dirs, names in os.walk(top):
            for name in names:
                if not name.endswith(PARTIAL_SUFFIX) or name.endswith(".fix.mp4" + PARTIAL_SUFFIX):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), self._segments).replace(os.sep, "/")
                if best is None or rel > best:  # lexical order of segment paths is time order
                    best = rel
        return best

    def ready(self, local_id: int, rel: str) -> Spooled | None:
        """The ready segment published at ``rel``, if the spool has it."""
        with self._lock:
            return self._ready.get(local_id, {}).get(rel)

    def pending(self, local_id: int) -> list[Spooled]:
        """This camera's ready segments, oldest first."""
        with self._lock:
            return sorted(self._ready.get(local_id, {}).values(), key=lambda s: s.start)

    def pending_total(self) -> tuple[int, datetime | None]:
        with self._lock:
            items = [s for per in self._ready.values() for s in per.values()]
            return len(items), min((s.end for s in items), default=None)

    def begin(self, item: Spooled) -> bool:
        """Mark a segment in flight (the quota then leaves it alone); False if it is gone."""
        with self._lock:
            if item.path not in self._ready.get(item.local_id, {}):
                return False
            self._in_flight.add(item.path)
            return True

    def end(self, item: Spooled) -> None:
        with self._lock:
            self._in_flight.discard(item.path)

    def delivered(self, item: Spooled) -> None:
        """The hub stored and indexed it: only now is the local copy deleted."""
        with self._lock:
            self._in_flight.discard(item.path)
            self._remove(item)

    def quarantine(self, item: Spooled, why: str) -> None:
        """Keep a segment the hub cannot take (its bytes changed since it was recorded) aside, never deleted."""
        with self._lock:
            self._in_flight.discard(item.path)
            self._ready.get(item.local_id, {}).pop(item.path, None)
            self._quarantine(item.path)
            self._log.error("segment %s quarantined: %s", item.path, why)

    def _quarantine(self, rel: str) -> None:
        dest = self.root / "quarantine" / rel.replace("/", "_")
        src = Path(self.store.local_path(rel))
        side = Path(str(src) + SIDECAR)
        if side.exists():
            os.replace(side, Path(str(dest) + SIDECAR))
        if src.exists():
            shutil.copy2(src, dest)
            self.store.delete(rel)  # through the store, so its byte count stays right

    def _remove(self, item: Spooled) -> None:
        self._ready.get(item.local_id, {}).pop(item.path, None)
        # Sidecar first: a crash between leaves a segment without one, which recovery digests and resends
        # (the hub answers "already stored"), never a sidecar naming a missing file.
        try:
            os.unlink(self.store.local_path(item.path) + SIDECAR)
        except FileNotFoundError:
            pass
        self.store.delete(item.path)

    def local_path(self, item: Spooled) -> str:
        return self.store.local_path(item.path)
