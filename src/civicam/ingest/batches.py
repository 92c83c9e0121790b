"""Several finished segments of one site in one request (``POST /api/edge/batches``).

Why: a gateway's cameras cut their segments at about the same moments, and the hub's cost per upload
request (TLS records, HTTP, routing, the thread-pool trip: about 4 ms of CPU) was, at 50 cameras, what kept
receiving dearer than pulling the same cameras itself (docs/benchmarks.md "Edge gateways"). A batch carries
up to ``MAX_ITEMS`` segments end to end in one body; each is then received exactly as a tus
creation-with-upload of its own (``UploadService.receive``: same checks, same idempotency by camera, start
and SHA-256, same durable store-then-acknowledge), and answered on its own.

A broken connection loses nothing: the segments that arrived whole are stored, the one cut short is kept
as an ordinary tus upload holding the bytes that came (the gateway's retry finds it by camera, start and
digest and resumes at its offset), and those not begun are not created. Resumable uploads themselves stay
tus (``/api/edge/uploads``); a batch is only ever a first try.

Manifest (``Civicam-Batch`` header): base64 of a JSON list, one object per segment in body order,
``{"length": <bytes>, "metadata": <its tus Upload-Metadata>}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Final, Protocol

from civicam.ingest.uploads import (
    MAX_SEGMENT_BYTES,
    Created,
    Incoming,
    SegmentMeta,
    UploadError,
    parse_metadata,
    segment_meta,
)

MAX_ITEMS: Final = 32
MAX_BYTES: Final = 128 * 1024 * 1024  # a batch is a first try of small, finished segments, not a backlog's worth
MAX_MANIFEST: Final = 64 * 1024
Received = tuple[Created, int, int | None]  # the upload, the hub's offset after it, the stored segment id


def parse_manifest(header: str, content_length: int | None) -> list[tuple[SegmentMeta, int]]:
    """The batch's segments and their lengths, in body order. Total: anything malformed raises UploadError
    (400, or 413 past the limits) before a byte of the body is read."""
    if len(header) > MAX_MANIFEST:
        raise UploadError(413, "too_large", f"Civicam-Batch is longer than {MAX_MANIFEST} characters.")
    try:
        raw = json.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise UploadError(400, "bad_batch", "Civicam-Batch is not base64 of a JSON list.") from None
    if not isinstance(raw, list) or not raw:
        raise UploadError(400, "bad_batch", "Civicam-Batch must list at least one segment.")
    if len(raw) > MAX_ITEMS:
        raise UploadError(413, "too_large", f"A batch carries at most {MAX_ITEMS} segments.")
    items: list[tuple[SegmentMeta, int]] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) != {"length", "metadata"} or \
                not isinstance(entry["metadata"], str) or type(entry["length"]) is not int:
            raise UploadError(400, "bad_batch", f"Civicam-Batch item {i} must be {{\"length\": int, "
                              f"\"metadata\": str}}.")
        if not 0 < entry["length"] <= MAX_SEGMENT_BYTES:
            raise UploadError(413, "too_large", f"Civicam-Batch item {i}: length must be 1..{MAX_SEGMENT_BYTES}.")
        items.append((segment_meta(parse_metadata(entry["metadata"])), entry["length"]))
    total = sum(length for _, length in items)
    if total > MAX_BYTES:
        raise UploadError(413, "too_large", f"A batch carries at most {MAX_BYTES} bytes; send the rest apart.")
    if content_length is None or content_length != total:
        raise UploadError(400, "bad_batch", f"Content-Length must be the sum of the items' lengths ({total}).")
    return items


class Sink(Protocol):
    def write(self, chunk: bytes | memoryview) -> None: ...


class Splitter:
    """Cuts the body into its items as it arrives: each piece goes to its item's sink (None: an item refused
    before its bytes came, whose bytes are read and dropped). ``at``: the item now being received."""

    def __init__(self, lengths: Sequence[int], sinks: Sequence[Sink | None]) -> None:
        if len(lengths) != len(sinks):
            raise ValueError("one sink per item")
        self._lengths, self._sinks = list(lengths), list(sinks)
        self.at = 0
        self._left = self._lengths[0] if self._lengths else 0

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while len(view):
            if self.at >= len(self._lengths):
                raise UploadError(400, "too_long", "The body runs past the batch's lengths.")
            take = min(self._left, len(view))
            sink = self._sinks[self.at]
            if sink is not None:
                # A view, not a copy of every piece of the body.
                sink.write(view[:take])
            view = view[take:]
            self._left -= take
            if self._left == 0:
                self.at += 1
                self._left = self._lengths[self.at] if self.at < len(self._lengths) else 0

    @property
    def complete(self) -> bool:
        return self.at >= len(self._lengths)


class Receiver(Protocol):
    def receive_batch(self, site_id: int, arrivals: Sequence[tuple[SegmentMeta, int, Incoming]],
                      token_id: int | None = None) -> list[Received | UploadError]: ...


def receive_all(svc: Receiver, site_id: int, items: Sequence[tuple[SegmentMeta, int]],
                bodies: Sequence[Incoming | UploadError], token_id: int | None) -> list[Received | UploadError]:
    """Each item received as its own upload would be, answered in order, in one thread-pool trip and (for
    new segments) one transaction for the whole batch (``UploadService.receive_batch``). An item whose bytes
    never began (the connection broke before it) is not created; one cut short is kept as a resumable
    upload, like a broken creation-with-upload."""
    out: list[Received | UploadError | None] = [None] * len(items)
    arrivals: list[tuple[SegmentMeta, int, Incoming]] = []
    where: list[int] = []
    try:
        for i, ((meta, length), body) in enumerate(zip(items, bodies, strict=True)):
            if isinstance(body, UploadError):
                out[i] = body
            elif body.size == 0:
                body.discard()
                out[i] = UploadError(400, "not_received", "None of this segment's bytes arrived; send it again.")
            else:
                arrivals.append((meta, length, body))
                where.append(i)
        results = svc.receive_batch(site_id, arrivals, token_id)
    except BaseException:
        for body in bodies:
            if not isinstance(body, UploadError):
                body.discard()  # leaves alone the bytes an upload row owns
        raise
    for i, (_meta, _length, body), result in zip(where, arrivals, results, strict=True):
        if isinstance(result, UploadError):
            body.discard()  # no upload row owns the bytes (a digest mismatch keeps its row and file)
        out[i] = result
    return [r for r in out if r is not None]
