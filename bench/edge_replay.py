"""The hub receiving the traffic of G gateways with C cameras each, replayed at the cameras' rate.

Why: the issue's size (20 gateways x 10 cameras) cannot run as real processes on a 2-core machine (the RTSP
server's 200 streams, 20 gateway processes recording them and the hub together put the load at 34 and the
benchmark measured nothing, docs/benchmarks.md "Edge gateways"). What the hub does with a gateway's traffic
does not depend on the gateway being there: every ``SEGMENT_S`` each of G connections sends what a gateway's
batch sender sends (``POST /api/edge/batches``, C finished segments of C cameras, site token, TLS), so the
hub's side can be measured at that size with the gateways' own cost left out (measured apart, with real
gateway processes, at 10 cameras). The segments are real: the files the pulling hub recorded from the same
cameras in the same run, with their index rows' metadata.

Each connection also sends the gateway's health report every ``HEALTH_S``. Gateways are spread evenly over a
segment's duration (real sites do not cut their segments in step). Lag here: from the moment a batch is due
(its segments' end) to the hub's answer that they are stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from procstat import cpu_seconds

from civicam.config.settings import get_settings
from civicam.ingest.uploads import encode_metadata
from civicam.storage.factory import open_store
from support.edge import Hub

T0 = datetime(2026, 12, 1, tzinfo=UTC)
HEALTH_S = 10.0  # edge.toml's health_interval_s default
WARM_TICKS = 2  # each connection's first batches (TLS handshake, caches) are sent before the window


def recorded_segments(hub_root: Path, limit: int = 30) -> list[tuple[bytes, dict[str, Any]]]:
    """Up to ``limit`` segments a hub recorded (bytes and the metadata a gateway would announce)."""
    store = open_store(get_settings(data_dir=hub_root))  # where that hub's store keeps a segment's path
    rows = Hub(hub_root).query("SELECT path, frames, keyframes, init_bytes, codec, width, height "
                               "FROM recording_segments ORDER BY id LIMIT ?", limit)
    out = []
    for path, frames, keyframes, init_bytes, codec, width, height in rows:
        data = Path(store.local_path(path)).read_bytes()
        out.append((data, {"frames": frames, "keyframes": keyframes, "init_bytes": init_bytes, "codec": codec,
                           "width": width, "height": height, "session": "replay"}))
    if not out:
        raise RuntimeError(f"no recorded segments under {hub_root}")
    return out


def measure_replay(root: Path, segments: list[tuple[bytes, dict[str, Any]]], gateways: int, cameras: int,
                   seconds: float, segment_s: float, pin: Any = None, outage_s: float = 0.0,
                   batch_window_s: float = 0.5) -> dict[str, Any]:
    hub = Hub(root / "replay-hub")
    hub.setup()
    tokens = [hub.token(hub.add_site(f"Site {g}"))["token"] for g in range(gateways)]
    hub.start()
    assert hub.proc is not None
    if pin is not None:
        pin(hub.proc.pid)
    clients = [httpx.Client(base_url=hub.url, verify=False, timeout=60) for _ in range(gateways)]
    auth = [{"Authorization": f"Bearer {t}", "Tus-Resumable": "1.0.0"} for t in tokens]
    cams = [[clients[g].post("/api/edge/cameras", json={"name": f"cam{c}", "probe": {"verdict": "accepted"}},
                             headers=auth[g]).json()["id"] for c in range(cameras)] for g in range(gateways)]
    ticks = WARM_TICKS + int(seconds / segment_s)
    epoch = time.monotonic() + 1.0
    lags: list[float] = []
    failures: list[str] = []
    guard = threading.Lock()
    window: dict[str, tuple[float, float]] = {}  # name -> (the hub's CPU seconds, monotonic time)
    # The outage: the hub stopped once every gateway's window is over, started again ``outage_s`` later.
    window_over = threading.Semaphore(0)
    back = threading.Event()
    back_at: list[float] = []
    caught_up = [0.0] * gateways  # per gateway: seconds from the hub's return to its last owed segment stored
    backlog = [0] * gateways  # per gateway: batches (ticks) owed when the hub returned
    after = [0] * gateways  # per gateway: batches delivered after the hub returned
    retried = [0]
    catch_up_cpu = 0.0
    timings: dict[str, float] = {}

    def body(g: int, tick: int) -> tuple[bytes, str]:
        parts = []
        for c, cam in enumerate(cams[g]):
            data, meta = segments[(g * cameras + c + tick) % len(segments)]
            start = T0 + timedelta(seconds=segment_s * tick)
            parts.append((data, {**meta, "camera_id": cam, "start": start.isoformat(), "seq": tick,
                                 "end": (start + timedelta(seconds=segment_s)).isoformat(),
                                 "sha256": hashlib.sha256(data).hexdigest()}))
        manifest = [{"length": len(d), "metadata": encode_metadata(m)} for d, m in parts]
        return b"".join(d for d, _ in parts), base64.b64encode(json.dumps(manifest).encode()).decode()

    health_every = max(1, round(HEALTH_S / segment_s))

    def health(g: int, tick: int) -> dict[str, Any]:
        end = (T0 + timedelta(seconds=segment_s * (tick + 1))).isoformat()
        return {"at": datetime.now(UTC).isoformat(), "spool_bytes": 3_000_000, "quota_bytes": 10**10, "relaying": [],
                "batches": {"requests": tick + 1, "segments": (tick + 1) * cameras, "largest": cameras},
                "pending_segments": cameras, "dropped_segments": 0, "upload_lag_s": 0.5,
                "last_contact": datetime.now(UTC).isoformat(),
                "cameras": [{"name": f"cam{c}", "camera_id": cam, "verdict": "accepted", "reasons": [],
                             "recording": True, "state": "recording", "pending_segments": 1, "uploaded": tick + 1,
                             "streaming": False, "last_uploaded_end": end, "last_error": None}
                            for c, cam in enumerate(cams[g])]}

    def send(g: int, built: tuple[bytes, str]) -> str | None:
        """One batch of gateway ``g`` (``body``'s bytes and manifest); why it failed, or None."""
        content, manifest = built
        try:
            r = clients[g].post("/api/edge/batches", content=content, headers={
                **auth[g], "Civicam-Batch": manifest, "Content-Type": "application/octet-stream"})
            if r.status_code != 200 or not all(i.get("stored") for i in r.json()["items"]):
                return f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            return repr(exc)
        return None

    def due_at(g: int, tick: int) -> float:
        return epoch + segment_s * g / gateways + segment_s * tick

    def gateway(g: int) -> None:
        for tick in range(ticks):
            built = body(g, tick)  # before it is due: the gateway's bytes are on its disk
            due = due_at(g, tick)
            time.sleep(max(0.0, due - time.monotonic()))
            failure = send(g, built)
            done = time.monotonic()
            if (tick + 1) % health_every == 0:  # the gateway's health report, as often as its default
                h = clients[g].post("/api/edge/health", json=health(g, tick), headers=auth[g])
                if h.status_code != 200:
                    with guard:
                        failures.append(f"gateway {g} health: {h.status_code} {h.text[:200]}")
            with guard:
                if failure is not None:
                    failures.append(f"gateway {g} tick {tick}: {failure}")
                if tick >= WARM_TICKS:
                    lags.append(done - due)
        if outage_s > 0:
            window_over.release()
            catch_up(g)

    def catch_up(g: int) -> None:
        """After the outage: the gateway's lanes deliver what they spooled, one segment per camera per batch,
        the live one first (edge/gateway.py ``choose_next``), each next batch once the sender's window has
        passed again (edge/batching.py: the lanes resubmit as soon as their answers are back)."""
        back.wait()
        returned = back_at[0]
        tick = ticks
        while due_at(g, tick) < returned:
            tick += 1
        owed, pending = tick - ticks, list(range(ticks, tick))  # batches spooled while the hub was down
        backlog[g] = owed
        while owed:
            now = time.monotonic()
            while due_at(g, tick) <= now:
                pending.append(tick)
                tick += 1
            live = len(pending) > 1 and due_at(g, pending[-1]) >= now - 2 * segment_s
            chosen = pending[-1] if live else pending[0]
            failure = send(g, body(g, chosen))
            if failure is not None:  # the lane backs off and retries (a connection of the stopped hub, a refusal)
                with guard:
                    retried[0] += 1
                    if retried[0] > 10 * gateways:
                        failures.append(f"gateway {g} catch-up tick {chosen}: {failure}")
                        return
                time.sleep(1.0)
                continue
            pending.remove(chosen)
            after[g] += 1
            if due_at(g, chosen) < returned:
                owed -= 1
            time.sleep(batch_window_s)
        caught_up[g] = time.monotonic() - returned - batch_window_s

    def mark(name: str, at: float) -> None:
        time.sleep(max(0.0, at - time.monotonic()))
        assert hub.proc is not None
        window[name] = (cpu_seconds(hub.proc.pid), time.monotonic())

    threads = [threading.Thread(target=gateway, args=(g,)) for g in range(gateways)]
    try:
        for t in threads:
            t.start()
        mark("start", epoch + segment_s * WARM_TICKS)
        mark("end", epoch + segment_s * ticks)
        if outage_s > 0:
            for _ in threads:  # every gateway's last batch of the window answered
                window_over.acquire()
            down = time.monotonic()
            hub.stop()
            stopped = time.monotonic()
            time.sleep(outage_s)
            back_at.append(time.monotonic())  # catch-up counts from here, the hub's start-up included (edge.py)
            hub.start()
            assert hub.proc is not None
            if pin is not None:
                pin(hub.proc.pid)
            c0 = cpu_seconds(hub.proc.pid)
            timings.update(stop_s=stopped - down, start_s=time.monotonic() - back_at[0])
            back.set()
        for t in threads:
            t.join()
        assert hub.proc is not None
        if outage_s > 0:
            catch_up_cpu = cpu_seconds(hub.proc.pid) - c0
        stored = hub.query("SELECT COUNT(*) FROM recording_segments")[0][0]
    finally:
        for c in clients:
            c.close()
        hub.stop()
    cpu, wall = (b - a for a, b in zip(window["start"], window["end"], strict=True))
    lags.sort()
    return {"hub_cpu_s": cpu, "wall_s": wall,
            "hub_cpu_per_camera_min": cpu / (gateways * cameras) / (wall / 60),
            "upload_lag_p95_s": lags[int(0.95 * (len(lags) - 1))] if lags else float("nan"),
            "upload_lag_median_s": statistics.median(lags) if lags else float("nan"),
            "upload_lag_max_s": lags[-1] if lags else float("nan"),
            "batches_in_window": len(lags), "segments_stored": stored,
            "segments_sent": cameras * (gateways * ticks + sum(after)),
            "failures": failures[:10], "failed": len(failures),
            **({"outage_s": outage_s, "backlog_segments": sum(backlog) * cameras, "catch_up_s": max(caught_up),
                "catch_up_per_outage": max(caught_up) / outage_s, "catch_up_hub_cpu_s": catch_up_cpu,
                "catch_up_retries": retried[0], **timings} if outage_s > 0 else {})}
