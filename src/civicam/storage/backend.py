"""Where segment files live: a small Protocol, and the local-disk implementation used today."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from civicam.domain.segments import PARTIAL_SUFFIX, SEGMENT_SUFFIX


@dataclass(frozen=True)
class StoredFile:
    """One file in the store, by relative path."""

    path: str
    bytes: int


@dataclass(frozen=True)
class Usage:
    """Bytes used by recordings, and bytes free on the volume (None if unknown)."""

    used: int
    free: int | None


class SegmentStore(Protocol):
    """What the recorder, the cleaner and playback need from storage."""

    def spool(self, rel: str) -> str:
        """A local filesystem path the muxer may write ``rel`` (a partial name) to."""
        ...

    def publish(self, partial_rel: str, final_rel: str) -> int:
        """Make a written partial visible under its final name atomically; returns its size."""
        ...

    def list(self) -> Iterator[StoredFile]:
        """Every segment and partial file in the store."""
        ...

    def open(self, rel: str) -> BinaryIO:
        """Read a published segment."""
        ...

    def local_path(self, rel: str) -> str:
        """A filesystem path a demuxer can read ``rel`` from."""
        ...

    def delete(self, rel: str) -> int:
        """Remove a file; returns the bytes freed (0 if it was already gone)."""
        ...

    def usage(self) -> Usage:
        """Bytes used and free, cheaply (kept as a running count)."""
        ...


def contained(real_root: str, rel: str) -> str:
    """The path of ``rel`` under ``real_root`` (resolved once by the caller); one that escapes it is refused.

    Paths come from the codec, but a crafted one must never leave the root. Lexical normalisation is
    enough: only the hub writes inside the root, and it makes no symbolic links there.
    """
    path = os.path.normpath(os.path.join(real_root, rel))
    if not path.startswith(real_root + os.sep):
        raise ValueError(f"path escapes the store: {rel!r}")
    return path


def spool_path(real_root: str, rel: str) -> str:
    """``contained``, with its folder made: where a muxer may write ``rel``."""
    path = contained(real_root, rel)
    # Not cached: the cleaner may remove an emptied folder at any time (another process, too).
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


class LocalDiskStore:
    """Segments under one root directory; publish is ``os.replace`` on the same filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        # Resolved once: resolving every path (an lstat per component) was a seventh of the per-segment cost.
        self._real = os.path.realpath(root)
        self._lock = threading.Lock()
        self._used = sum(f.bytes for f in self.list() if not f.path.endswith(PARTIAL_SUFFIX))

    def _abs(self, rel: str) -> Path:
        return Path(self._path(rel))

    def _path(self, rel: str) -> str:
        return contained(self._real, rel)

    def spool(self, rel: str) -> str:
        return spool_path(self._real, rel)

    def publish(self, partial_rel: str, final_rel: str) -> int:
        src, dst = self._path(partial_rel), self._path(final_rel)
        size = os.stat(src).st_size
        if os.path.dirname(dst) != os.path.dirname(src):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
        # No fsync per segment: a power cut may lose the last seconds, which start-up repair tolerates,
        # while fsync on every segment of hundreds of cameras would stall the disk.
        os.replace(src, dst)
        with self._lock:
            self._used += size
        return size

    def list(self) -> Iterator[StoredFile]:
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if not (name.endswith(SEGMENT_SUFFIX) or name.endswith(SEGMENT_SUFFIX + PARTIAL_SUFFIX)):
                    continue
                full = Path(dirpath) / name
                try:
                    size = full.stat().st_size
                except FileNotFoundError:
                    continue
                yield StoredFile(full.relative_to(self.root).as_posix(), size)

    def open(self, rel: str) -> BinaryIO:
        return open(self._abs(rel), "rb")

    def local_path(self, rel: str) -> str:
        return self._path(rel)

    def delete(self, rel: str) -> int:
        path = self._abs(rel)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        if not rel.endswith(PARTIAL_SUFFIX):
            with self._lock:
                self._used = max(0, self._used - size)
        # Empty hour/day folders are removed so the tree does not grow forever.
        root = Path(self._real)
        for parent in path.parents:
            if parent == root or root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break
        return size

    def usage(self) -> Usage:
        try:
            free: int | None = shutil.disk_usage(self.root).free
        except OSError:
            free = None
        with self._lock:
            return Usage(self._used, free)


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error means the disk (or a quota) is full, which pauses recording instead of failing."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
