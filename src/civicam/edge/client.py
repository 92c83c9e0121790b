"""The gateway's only channel: HTTPS out to the hub, the hub's certificate pinned, the site token on each call.

Pinning: before any request the gateway reads the certificate the hub presents (no data sent), compares
its SHA-256 with the fingerprint given at enrolment, and then trusts exactly that certificate for the TLS
handshakes that carry requests. A different certificate fails the handshake, so the token never reaches
anyone but the pinned hub.

Uploads are tus 1.0.0 (core + creation) against ``/api/edge/uploads``; the segment being recorded is streamed
with creation-defer-length (``stream_*``, edge/stream.py); see ``api/routers/edge.py``. A finished segment's
first try goes with those of the site's other cameras finished at about the same time, in one request to
``/api/edge/batches`` (edge/batching.py, ingest/batches.py); every retry is tus. View-only
cameras are relayed on the hub's request, learnt by long-polling ``/api/edge/relay-requests`` (edge/relay.py).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import ssl
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from civicam.auth.tls import fingerprint_der
from civicam.edge.batching import Closed, GroupSender
from civicam.edge.config import EdgeConfig
from civicam.edge.spool import QUOTA_GAP, GapEvent, Spooled
from civicam.ingest.uploads import encode_metadata

TUS = {"Tus-Resumable": "1.0.0"}
RELAY_POLL_EXTRA_S = 15.0  # a long poll is held by the hub (api/routers/edge.py RELAY_HOLD_S): wait that longer


class HubUnreachable(Exception):
    """The hub could not be reached or answered 5xx: keep the spool and retry with backoff."""


class PinMismatch(Exception):
    """The server presented a certificate other than the pinned one: nothing was sent to it."""


class HubRefused(Exception):
    """The hub refused the request (the message says why): 401 token, 403 camera of another site, 409, 4xx."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"hub refused ({status} {code}): {message}")
        self.status = status
        self.code = code


class DigestMismatch(HubRefused):
    """The hub received bytes whose SHA-256 is not the announced one (nothing stored)."""


class NotWanted(HubRefused):
    """A relayed segment the hub no longer wants: nobody watches the camera; stop pulling it."""


def fetch_certificate(host: str, port: int, timeout_s: float) -> bytes:
    """The DER certificate a TLS server presents; nothing is sent but the handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout_s) as sock, \
            ctx.wrap_socket(sock, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return der


def pinned_context(host: str, port: int, fingerprint: str, timeout_s: float) -> ssl.SSLContext:
    """A client context that trusts only the hub certificate whose SHA-256 is ``fingerprint``."""
    der = fetch_certificate(host, port, timeout_s)
    got = fingerprint_der(der)
    if got != fingerprint:
        raise PinMismatch(f"the server at {host}:{port} presented a certificate with SHA-256 {got}, not the pinned "
                          f"{fingerprint}; refusing to talk to it (re-enrol if the hub's certificate was replaced)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The pinned certificate is the trust anchor itself; the name in it is irrelevant (it may be an address).
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cadata=ssl.DER_cert_to_PEM_cert(der))
    return ctx


class HubClient:
    """Thread-safe enough for one lane per camera: httpx.Client is shared; a broken pin rebuilds it."""

    def __init__(self, cfg: EdgeConfig, logger: logging.Logger) -> None:
        self.cfg = cfg
        self._log = logger
        parts = urlsplit(cfg.hub_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 443
        self._http: httpx.Client | None = None
        self._tried: set[str] = set()  # segments whose upload was attempted in this run
        # Hub camera ids whose last creation answer said somebody watches them live (``Civicam-Live``).
        self.watched: dict[int, bool] = {}
        self.batches: GroupSender[Entry, BatchAnswer | HubRefused] | None = (
            GroupSender(self.upload_batch, cfg.batch_window_s, cfg.batch_max, name="edge-batches")
            if cfg.batch_max > 1 else None)

    def shutdown(self) -> None:
        """The gateway stops: segments still waiting for a batch are refused (their lanes retry next run)."""
        if self.batches is not None:
            self.batches.close()
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            try:
                ctx = pinned_context(self._host, self._port, self.cfg.hub_fingerprint, self.cfg.http_timeout_s)
            except PinMismatch:
                raise
            except (OSError, ssl.SSLError) as exc:
                raise HubUnreachable(f"cannot reach the hub at {self._host}:{self._port}: {exc}") from None
            self._http = httpx.Client(base_url=self.cfg.hub_url, verify=ctx, timeout=self.cfg.http_timeout_s)
        return self._http

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**TUS, "Authorization": f"Bearer {self.cfg.site_token()}", **kwargs.pop("headers", {})}
        try:
            response = self._client().request(method, path, headers=headers, **kwargs)
        except httpx.ConnectError as exc:
            self.close()  # the next call checks the pin again: the hub may come back with another certificate
            if isinstance(exc.__cause__, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise PinMismatch(f"the hub's certificate no longer matches the pinned fingerprint: {exc}") from None
            raise HubUnreachable(f"cannot reach the hub: {exc}") from None
        except (httpx.TransportError, OSError) as exc:
            self.close()
            raise HubUnreachable(f"connection to the hub failed: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise HubUnreachable(f"the hub answered {response.status_code}")
        return response

    @staticmethod
    def _refusal(response: httpx.Response) -> HubRefused:
        try:
            body = response.json()
            detail, code = str(body.get("detail")), str(body.get("code", ""))
        except ValueError:
            detail, code = response.text[:200], ""
        return _refused(response.status_code, code, detail)

    # -- calls ----------------------------------------------------------------------------------------

    def register_camera(self, name: str, view_only: bool, probe: dict[str, Any]) -> dict[str, Any]:
        r = self.request("POST", "/api/edge/cameras", json={"name": name, "view_only": view_only, "probe": probe})
        if r.status_code != 200:
            raise self._refusal(r)
        data: dict[str, Any] = r.json()
        return data

    def send_gap(self, hub_camera: int, event: GapEvent) -> None:
        quota = event.reason == QUOTA_GAP
        r = self.request("POST", "/api/edge/gaps", json={
            "camera_id": hub_camera, "start": event.start.isoformat(),
            "end": event.end.isoformat() if event.end is not None else None, "reason": event.reason,
            "detail": "spool quota reached at the site gateway" if quota else event.detail})
        if r.status_code != 200:
            raise self._refusal(r)

    def health(self, body: dict[str, Any]) -> None:
        r = self.request("POST", "/api/edge/health", json=body)
        if r.status_code != 200:
            raise self._refusal(r)

    def relay_requests(self, have: list[int]) -> list[int]:
        """Long poll: the hub ids of this site's view-only cameras somebody watches now (``have``: relayed now)."""
        r = self.request("GET", "/api/edge/relay-requests", params={"have": ",".join(map(str, have))},
                         timeout=self.cfg.http_timeout_s + RELAY_POLL_EXTRA_S)
        if r.status_code != 200:
            raise self._refusal(r)
        return [int(c) for c in r.json()["cameras"]]

    def push_relay(self, hub_camera: int, path: str, start: datetime) -> None:
        """One finished segment of a relayed camera; NotWanted when nobody watches it any more."""
        with open(path, "rb") as fh:
            body = fh.read()
        r = self.request("POST", f"/api/edge/relay/{hub_camera}/segments", content=body,
                         headers={"Civicam-Start": start.isoformat(), "Content-Type": "video/mp4"})
        if r.status_code == 200:
            return
        refusal = self._refusal(r)
        if refusal.code == "not_wanted":
            raise NotWanted(refusal.status, refusal.code, str(refusal))
        raise refusal

    # -- the segment being recorded, streamed (tus creation-defer-length) ------------------------------

    def stream_create(self, hub_camera: int, start: datetime) -> Stream:
        """Create (or find, after a broken connection) the streamed upload of the segment starting at ``start``."""
        meta = {"camera_id": hub_camera, "start": start.isoformat()}
        r = self.request("POST", "/api/edge/uploads",
                         headers={"Upload-Defer-Length": "1", "Upload-Metadata": encode_metadata(meta)})
        if r.status_code not in (200, 201):
            raise self._refusal(r)
        self.watched[hub_camera] = r.headers.get("Civicam-Live") == "watched"
        stored = r.headers.get("Civicam-Stored")
        return Stream(r.headers["Location"], int(r.headers.get("Upload-Offset", "0")),
                      int(stored) if stored is not None else None)

    def stream_append(self, location: str, offset: int, data: bytes,
                      final: tuple[int, Spooled, int] | None = None) -> tuple[int, int | None]:
        """Append ``data`` at ``offset``; ``final`` (length, segment, hub camera) ends the stream: the hub checks
        the whole file's SHA-256 and stores it. Returns the hub's offset and, once stored, the segment id."""
        headers = {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
        if final is not None:
            length, item, hub_camera = final
            headers["Upload-Length"] = str(length)
            headers["Civicam-Segment"] = encode_metadata(segment_metadata(hub_camera, item))
        r = self.request("PATCH", location, content=data, headers=headers)
        if r.status_code != 204:
            raise self._refusal(r)
        stored = r.headers.get("Civicam-Stored")
        return int(r.headers["Upload-Offset"]), int(stored) if stored is not None else None

    def terminate(self, location: str) -> None:
        """tus termination: the recorder dropped the segment being streamed; the hub removes what it had."""
        r = self.request("DELETE", location)
        if r.status_code not in (204, 404):
            raise self._refusal(r)

    def upload_batch(self, entries: Sequence[Entry]) -> list[BatchAnswer | HubRefused]:
        """Several finished segments in one request (``/api/edge/batches``); one answer per entry, in order: where
        the hub has it (stored or not), or its refusal (returned, for its own lane to raise)."""
        manifest = [{"length": e.item.bytes, "metadata": encode_metadata(segment_metadata(e.hub_camera, e.item))}
                    for e in entries]
        # Streamed from the files (never the whole batch in memory), with its length: the hub checks it
        # against the manifest before reading.
        r = self.request("POST", "/api/edge/batches", content=_files(entries), headers={
            "Civicam-Batch": base64.b64encode(json.dumps(manifest).encode()).decode(),
            "Content-Length": str(sum(e.item.bytes for e in entries)), "Content-Type": "application/octet-stream"})
        if r.status_code != 200:
            raise self._refusal(r)
        items = r.json()["items"]
        if len(items) != len(entries):
            raise HubUnreachable(f"the hub answered {len(items)} items for a batch of {len(entries)}")
        out: list[BatchAnswer | HubRefused] = []
        for got in items:
            if "status" in got:
                out.append(_refused(int(got["status"]), str(got.get("code", "")), str(got.get("detail"))))
            else:
                out.append(BatchAnswer(str(got["location"]), int(got["offset"]),
                                       None if got["stored"] is None else int(got["stored"]), bool(got["watched"])))
        return out

    def upload(self, hub_camera: int, item: Spooled, path: str) -> int:
        """Deliver one segment (resuming where the hub is); returns the hub's segment id once it is stored."""
        headers = {"Upload-Length": str(item.bytes),
                   "Upload-Metadata": encode_metadata(segment_metadata(hub_camera, item))}
        # First try: the segment's bytes go with other cameras' finished at the same time (one request for
        # them all), or ride on its creation request (tus creation-with-upload): one request either way.
        # A retry creates without a body: the hub may hold some bytes already, and the answer's offset says
        # where to continue.
        first = item.path not in self._tried
        self._tried.add(item.path)
        if first and self.batches is not None and item.bytes <= min(BATCH_ITEM_MAX, self.cfg.chunk_bytes) \
                and _size(path) == item.bytes:
            try:
                got = self.batches.submit(Entry(hub_camera, item, path))
            except Closed as exc:
                raise HubUnreachable(str(exc)) from None
            if isinstance(got, HubRefused):
                raise got
            self.watched[hub_camera] = got.watched
            if got.stored is not None:
                self._tried.discard(item.path)
                return got.stored
            location, offset = got.location, got.offset
        else:
            if first:
                r = self.request("POST", "/api/edge/uploads", content=_read(path, 0, self.cfg.chunk_bytes),
                                 headers={**headers, "Content-Type": "application/offset+octet-stream"})
            else:
                r = self.request("POST", "/api/edge/uploads", headers=headers)
            if r.status_code not in (200, 201):
                raise self._refusal(r)
            self.watched[hub_camera] = r.headers.get("Civicam-Live") == "watched"
            if "Civicam-Stored" in r.headers:
                self._tried.discard(item.path)
                return int(r.headers["Civicam-Stored"])
            location = r.headers["Location"]
            offset = int(r.headers.get("Upload-Offset", "0"))
        while True:
            r = self.request("PATCH", location, content=_read(path, offset, self.cfg.chunk_bytes),
                             headers={"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
            if r.status_code == 409 and r.json().get("code") in ("offset_mismatch", "busy"):
                head = self.request("HEAD", location)
                if head.status_code != 200:
                    raise self._refusal(head)
                if "Civicam-Stored" in head.headers:
                    return int(head.headers["Civicam-Stored"])
                offset = int(head.headers["Upload-Offset"])
                continue
            if r.status_code != 204:
                raise self._refusal(r)
            if "Civicam-Stored" in r.headers:
                self._tried.discard(item.path)
                return int(r.headers["Civicam-Stored"])
            new_offset = int(r.headers["Upload-Offset"])
            if new_offset <= offset:
                raise HubUnreachable("the hub did not advance the upload offset")
            offset = new_offset


def _refused(status: int, code: str, detail: str) -> HubRefused:
    """A refusal of a request, or of one segment of a batch: 460 is a digest mismatch."""
    cls = DigestMismatch if status == 460 else HubRefused
    return cls(status, code or {401: "unauthorised", 403: "forbidden"}.get(status, "refused"), detail)


class Entry(NamedTuple):
    """A finished segment waiting for a batch: the hub's camera id, the spooled segment, its file."""

    hub_camera: int
    item: Spooled
    path: str


class BatchAnswer(NamedTuple):
    """The hub's answer for one segment of a batch: its tus upload, the hub's offset, the segment id once stored."""

    location: str
    offset: int
    stored: int | None
    watched: bool


class Stream(NamedTuple):
    """A streamed upload on the hub: where to PATCH, the hub's offset, the segment id if it is stored."""

    location: str
    offset: int
    stored: int | None


def segment_metadata(hub_camera: int, item: Spooled) -> dict[str, Any]:
    """What the hub indexes about a finished segment (tus metadata of an upload, or a stream's last PATCH)."""
    return {"camera_id": hub_camera, "start": item.start.isoformat(), "end": item.end.isoformat(),
            "sha256": item.sha256, "seq": item.seq, "frames": item.frames, "keyframes": item.keyframes,
            "init_bytes": item.init_bytes, "codec": item.codec, "width": item.width, "height": item.height,
            "session": item.session}


WHOLE_BODY_MAX = 8 * 1024 * 1024
BATCH_ITEM_MAX = WHOLE_BODY_MAX  # larger segments (and any above chunk_bytes) go on their own, by tus


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1  # the tus path reports it


def _files(entries: Sequence[Entry]) -> Iterator[bytes]:
    """The batch's body: each entry's file, exactly its recorded size, in 1 MiB pieces."""
    for e in entries:
        left = e.item.bytes
        with open(e.path, "rb") as fh:
            while left > 0:
                block = fh.read(min(1 << 20, left))
                if not block:
                    raise OSError(f"{e.path}: shorter than the {e.item.bytes} bytes recorded")
                left -= len(block)
                yield block


def _read(path: str, offset: int, size: int) -> bytes | Iterator[bytes]:
    """The file from ``offset``, at most ``size`` bytes: up to 8 MiB (a segment) read at once, so the request
    has a Content-Length and the hub parses one body instead of chunked framing; more is streamed in 64 KiB
    pieces, never held in memory."""
    if size <= WHOLE_BODY_MAX:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(size)
    return _pieces(path, offset, size)


def _pieces(path: str, offset: int, size: int) -> Iterator[bytes]:
    left = size
    with open(path, "rb") as fh:
        fh.seek(offset)
        while left > 0:
            block = fh.read(min(65536, left))
            if not block:
                return
            left -= len(block)
            yield block
