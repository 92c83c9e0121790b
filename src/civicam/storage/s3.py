"""Segments in an S3-compatible bucket (SeaweedFS, MinIO, AWS), written through a local spool.

Keys are the path codec's relative paths under an optional prefix, so the bucket has the same layout as
the local disk and can be re-indexed from key names alone.

* **Visible only once complete.** The muxer writes a segment as a partial file in the local spool; publish
  uploads it (one PUT, or a multipart upload above the threshold, which S3 makes visible only at
  CompleteMultipartUpload) and only then does the recorder index it. A crash before the upload ends leaves
  the partial in the spool (start-up repair remuxes and uploads it) and maybe an unfinished multipart
  upload (aborted by ``abort_stale_uploads``, which reconcile calls); a crash after it leaves an object
  without a row, which reconcile indexes. No reader ever sees half an object.
* **Low-latency live.** The segment in progress stays local until it completes: its parts are served from
  the spool of the node that records the camera (uploading every 0.4 s part as an object would multiply
  the request rate by ten for what only that node's live viewers read). After publishing, the segment is
  kept in the spool as a read cache, so the parts of the last published segments, analytics and blurring
  read it without a download; the oldest copies beyond ``cache_bytes`` are dropped.
* **Reads.** ``local_path`` of a published segment downloads it into the spool once (atomically, by
  rename); a missing key is FileNotFoundError, as on the local disk.
"""

from __future__ import annotations

import errno
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from civicam.domain.segments import PARTIAL_SUFFIX, SEGMENT_SUFFIX
from civicam.storage.backend import StoredFile, Usage, contained, spool_path

STALE_UPLOAD_S = 3600.0  # an unfinished multipart upload older than this is a crashed writer's
SETTLE_S = 0.0  # one recorder per bucket: every unindexed object is its own, indexed at start-up
STALE_DOWNLOAD_S = 600.0  # a temporary download file this old in the spool is a crashed reader's
DERIVED = "derived/"  # copies made from a segment (blurred ones), under the segment's own path
DERIVED_KINDS = ("blurred",)


def _missing(exc: Exception) -> bool:
    """Whether a botocore ClientError means the key (or the upload) does not exist."""
    response: Any = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


class S3Store:
    """The ``SegmentStore`` protocol over one bucket; ``client`` is a boto3 S3 client."""

    slow_publish = True  # publish is an upload: the native engine runs it off its event loop

    def __init__(self, client: Any, bucket: str, spool: Path, *, prefix: str = "",
                 multipart_threshold: int = 16 * 1024 * 1024, cache_bytes: int = 2 * 1024**3,
                 create_bucket: bool = False, settle_s: float = SETTLE_S) -> None:
        from boto3.s3.transfer import TransferConfig

        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.spool_dir = spool
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._real = os.path.realpath(spool)
        self._transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                        multipart_chunksize=max(multipart_threshold // 2, 5 * 1024 * 1024),
                                        use_threads=False)
        self._cache_bytes = cache_bytes
        self._settle_s = settle_s
        self._modified: dict[str, datetime] = {}  # last listing's LastModified of each object
        self._lock = threading.Lock()
        self._cached: OrderedDict[str, int] = OrderedDict()  # published copies in the spool, oldest first
        self._cached_total = 0
        if create_bucket:
            self._ensure_bucket()
        # Counted on first use only: the recorder's cleaner asks, an API process never does, and listing a
        # city's bucket to start a process that only serves playlists would take hours.
        self._used: int | None = None
        for rel, size in self._local_published():
            self._remember(rel, size)

    # -- paths ----------------------------------------------------------------------------------------

    def _path(self, rel: str) -> str:
        return contained(self._real, rel)

    def _key(self, rel: str) -> str:
        self._path(rel)  # the same refusal of '..' as the local disk
        return self.prefix + rel

    @staticmethod
    def _is_published(rel: str) -> bool:
        return rel.endswith(SEGMENT_SUFFIX)

    # -- the protocol ---------------------------------------------------------------------------------

    def spool(self, rel: str) -> str:
        return spool_path(self._real, rel)

    def publish(self, partial_rel: str, final_rel: str) -> int:
        src, dst = self._path(partial_rel), self._path(final_rel)
        size = os.stat(src).st_size
        # Upload first: the recorder indexes the segment only after this returns, so an indexed segment
        # is always a whole object. upload_file aborts its own multipart upload on an error.
        self.client.upload_file(src, self.bucket, self._key(final_rel), Config=self._transfer,
                                ExtraArgs={"ContentType": "video/mp4"})
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)  # kept as the read cache of the newest segments
        with self._lock:
            if self._used is not None:
                self._used += size
        self._remember(final_rel, size)
        return size

    def list(self) -> Iterator[StoredFile]:
        """Objects in the bucket, then partials in the spool (published copies there are only a cache)."""
        yield from self._objects()
        for dirpath, _dirs, files in os.walk(self.spool_dir):
            for name in files:
                if name.endswith(SEGMENT_SUFFIX + PARTIAL_SUFFIX):
                    full = Path(dirpath) / name
                    try:
                        yield StoredFile(full.relative_to(self.spool_dir).as_posix(), full.stat().st_size)
                    except FileNotFoundError:
                        continue

    def open(self, rel: str) -> BinaryIO:
        return open(self.local_path(rel), "rb")

    def local_path(self, rel: str) -> str:
        """The spool path of ``rel``; a published segment not there is downloaded first."""
        path = self._path(rel)
        if not self._is_published(rel) or os.path.exists(path):
            if self._is_published(rel):
                with self._lock:
                    if rel in self._cached:
                        self._cached.move_to_end(rel)
            return path
        from botocore.exceptions import ClientError

        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.download"
        try:
            self.client.download_file(self.bucket, self._key(rel), tmp)
        except ClientError as exc:
            _unlink(tmp)
            if _missing(exc):
                raise FileNotFoundError(errno.ENOENT, "no such segment in the bucket", rel) from None
            raise
        except BaseException:
            _unlink(tmp)
            raise
        os.replace(tmp, path)  # concurrent downloads of one key both write whole files; either rename wins
        self._remember(rel, os.stat(path).st_size)
        return path

    def delete(self, rel: str) -> int:
        if not self._is_published(rel):
            return _unlink(self._path(rel))
        from botocore.exceptions import ClientError

        key = self._key(rel)
        try:
            size = int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if not _missing(exc):
                raise
            size = 0
        if size:
            self.client.delete_object(Bucket=self.bucket, Key=key)
            with self._lock:
                if self._used is not None:
                    self._used = max(0, self._used - size)
        for kind in DERIVED_KINDS:  # a blurred copy must not outlive its segment (retention covers it too)
            self.client.delete_object(Bucket=self.bucket, Key=self._derived_key(kind, rel))
        self._forget(rel)
        return size

    # -- derived copies -------------------------------------------------------------------------------

    def get_derived(self, kind: str, rel: str, dest: Path) -> bool:
        """Fetch the ``kind`` copy of segment ``rel`` (made by any node) into ``dest``; False if none yet.

        The API tier shares blurred segments this way: blurring costs seconds of CPU per segment, and
        whichever process a player's request reaches should not pay it again.
        """
        from botocore.exceptions import ClientError

        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{dest}.{os.getpid()}.{secrets.token_hex(4)}.download"
        try:
            self.client.download_file(self.bucket, self._derived_key(kind, rel), tmp)
        except ClientError as exc:
            _unlink(tmp)
            if _missing(exc):
                return False
            raise
        except BaseException:
            _unlink(tmp)
            raise
        os.replace(tmp, dest)
        return True

    def put_derived(self, kind: str, rel: str, src: Path) -> None:
        """Share the ``kind`` copy of segment ``rel``; deleted with the segment."""
        self.client.upload_file(str(src), self.bucket, self._derived_key(kind, rel), Config=self._transfer,
                                ExtraArgs={"ContentType": "video/mp4"})

    def _derived_key(self, kind: str, rel: str) -> str:
        if kind not in DERIVED_KINDS:
            raise ValueError(f"unknown derived copy: {kind!r}")
        return self.prefix + DERIVED + kind + "/" + self._key(rel)[len(self.prefix):]

    def usage(self) -> Usage:
        # A bucket has no free space to speak of: the quota (recording.quota_bytes) bounds it.
        if self._used is None:
            counted = sum(f.bytes for f in self._objects())
            with self._lock:
                if self._used is None:
                    self._used = counted
        with self._lock:
            return Usage(self._used, None)

    # -- crash repair ---------------------------------------------------------------------------------

    def abort_stale_uploads(self, older_than_s: float = STALE_UPLOAD_S, now: datetime | None = None) -> int:
        """Abort unfinished multipart uploads under the prefix started before ``older_than_s`` ago.

        Their parts are invisible but billed; reconcile runs this at start-up. 0 aborts every one, for
        a store that no recorder writes to meanwhile.
        """
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
        aborted = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                started = upload.get("Initiated")
                if isinstance(started, datetime) and started.astimezone(UTC) > cutoff:
                    continue
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                   UploadId=upload["UploadId"])
                aborted += 1
        return aborted

    # -- internals ------------------------------------------------------------------------------------

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:  # another process made it first
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def _objects(self) -> Iterator[StoredFile]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                rel = str(obj["Key"])[len(self.prefix):]
                if rel.endswith(SEGMENT_SUFFIX) and not rel.startswith(DERIVED):
                    modified = obj.get("LastModified")
                    if isinstance(modified, datetime):
                        self._modified[rel] = modified
                    yield StoredFile(rel, int(obj["Size"]))

    def settling(self, rel: str, now: datetime | None = None) -> bool:
        """Whether the object ``rel`` (as last listed) was written so recently that its writer, another
        recorder of the bucket, may be about to index it: start-up repair leaves such objects alone."""
        modified = self._modified.get(rel)
        if modified is None:
            return False
        return ((now or datetime.now(UTC)) - modified.astimezone(UTC)).total_seconds() < self._settle_s

    def _local_published(self) -> Iterator[tuple[str, int]]:
        found: list[tuple[float, str, int]] = []
        stale = time.time() - STALE_DOWNLOAD_S
        for dirpath, _dirs, files in os.walk(self.spool_dir):
            for name in files:
                if name.endswith(".download"):
                    # A download cut short by a crash; only old ones: processes sharing this spool (the
                    # recorder and an API process of one node) may be downloading right now.
                    path = os.path.join(dirpath, name)
                    try:
                        if os.stat(path).st_mtime < stale:
                            _unlink(path)
                    except FileNotFoundError:
                        pass
                elif name.endswith(SEGMENT_SUFFIX):
                    full = Path(dirpath) / name
                    st = full.stat()
                    found.append((st.st_mtime, full.relative_to(self.spool_dir).as_posix(), st.st_size))
        for _mtime, rel, size in sorted(found):
            yield rel, size

    def _remember(self, rel: str, size: int) -> None:
        evict: list[str] = []
        with self._lock:
            self._cached_total += size - self._cached.pop(rel, 0)
            self._cached[rel] = size
            while self._cached_total > self._cache_bytes and len(self._cached) > 1:
                old, old_size = self._cached.popitem(last=False)
                self._cached_total -= old_size
                evict.append(old)
        for old in evict:
            # Only the spool copy goes; the object stays. A reader with it open keeps reading it.
            _unlink(self._path(old))

    def _forget(self, rel: str) -> None:
        with self._lock:
            self._cached_total -= self._cached.pop(rel, 0)
        _unlink(self._path(rel))


def _unlink(path: str) -> int:
    try:
        size = os.stat(path).st_size
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return size


def s3_client(endpoint_url: str | None, region: str, access_key_id: str | None, secret_access_key: str | None) -> Any:
    """A boto3 S3 client with path-style addressing (SeaweedFS and MinIO want it) and bounded retries."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"},
                    connect_timeout=5, read_timeout=30, max_pool_connections=64)
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, aws_access_key_id=access_key_id,
                        aws_secret_access_key=secret_access_key, config=config)
