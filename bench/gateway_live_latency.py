"""Live latency of a gateway camera against a pulled one: capture time -> part listed in the hub's live playlist.

One time-coded camera (1280x720@25 H.264, ~2 Mbit/s, the GStreamer RTSP test server, every frame carrying the
wall-clock millisecond it was produced as a row of blocks: tests/support/timecode.py) is recorded twice by
one hub (``civicam serve --tls``, SQLite, analytics off): once pulled by the hub itself, once through a site
gateway (``civicam edge run``) that streams the segment it records part by part (``live_parts``, the default)
or, with ``--whole``, uploads each finished segment as before. For each camera a client follows the hub's
unblurred LL-HLS playlist with blocking reloads (as a player does); the moment a new part is listed it
fetches the part, decodes it (one persistent decoder per camera, so parts that do not start on a keyframe
decode too) and reads the time code of the part's last frame, the newest picture the part holds.
Latency = time the playlist listing the part arrived - that frame's time code (one machine, one clock).
Also reported: the same for the part's first frame, and the hub's CPU. Usage::

    python bench/gateway_live_latency.py [--seconds 60] [--whole] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from procstat import cpu_seconds  # noqa: E402

from support import timecode as tc  # noqa: E402
from support.edge import Gateway, Hub, wait_for  # noqa: E402
from support.rtsp import RtspServer  # noqa: E402

SEGMENT_S = 4.0
USER, PASSWORD = "latency-bench", "Latency-bench-passw0rd"


@dataclass
class Result:
    camera: str
    parts: int = 0
    frames: int = 0
    undecoded: int = 0
    newest_median_ms: float | None = None  # per part: its newest frame's capture -> the part listed
    newest_p95_ms: float | None = None
    frame_median_ms: float | None = None  # per frame: capture -> listed (in the part that holds it)
    frame_p95_ms: float | None = None
    frame_max_ms: float | None = None
    samples: list[float] = field(default_factory=list)


def _attrs(value: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', value)}


def parts_of(text: str) -> list[tuple[int, int, str, int, int, str]]:
    """(msn, index, uri, offset, length, map uri) of every part a media playlist lists."""
    out = []
    msn, index, map_uri = 0, 0, ""
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MAP:"):
            map_uri = _attrs(line.split(":", 1)[1])["URI"]
        elif line.startswith("#EXT-X-PART:"):
            a = _attrs(line.split(":", 1)[1])
            n, off = a["BYTERANGE"].split("@")
            out.append((msn, index, a["URI"], int(off), int(n), map_uri))
            index += 1
        elif line and not line.startswith("#"):
            msn, index = msn + 1, 0
    return out


class Follower:
    """Follows one camera's unblurred live playlist like a player and times each new part."""

    def __init__(self, hub: Hub, token: str, camera: int, label: str, stop: threading.Event) -> None:
        self.http = httpx.Client(base_url=hub.url, verify=False, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        self.camera, self.stop = camera, stop
        self.result = Result(label)
        self.frames: list[float] = []
        self._counted: set[int] = set()  # time codes of the frames timed so far
        self.by_index: list[tuple[int, float, int]] = []  # (part index in its segment, latency ms, frames)
        r = self.http.get(f"/api/cameras/{camera}/live.m3u8", params={"unblurred_reason": "latency bench"})
        r.raise_for_status()
        media = next(ln for ln in r.text.splitlines() if ln and not ln.startswith("#"))
        self.grant = re.search(r"grant=([^&]+)", media)[1]  # type: ignore[index]
        self._seen: set[tuple[str, int]] = set()
        self._decoder: Any = None
        self._inits: dict[str, bytes] = {}

    def run(self, timed_from: float, until: float) -> None:
        params: dict[str, Any] = {"grant": self.grant}
        while time.time() < until and not self.stop.is_set():
            r = self.http.get(f"/api/cameras/{self.camera}/live/media.m3u8", params=params)
            arrived = time.time() * 1000
            if r.status_code != 200:
                time.sleep(0.2)  # the polling interval of a player that got an error
                continue
            parts = parts_of(r.text)
            if parts:
                self._segments(r.text, None)  # whole segments listed beside parts: their frames come as parts
            else:
                # No segment in progress (a gateway that uploads whole segments): the new whole segments.
                self._segments(r.text, arrived if arrived >= timed_from * 1000 else None)
                time.sleep(0.1)  # polling interval: a segment's availability is timed to within it
                continue
            for _msn, index, uri, off, n, map_uri in parts:
                key = (uri.split("?")[0], off)
                if key in self._seen:
                    continue
                self._seen.add(key)
                # Until ``timed_from`` the player catches up with the live edge: parts listed then are older.
                self._decode(map_uri, uri, off, n, arrived if arrived >= timed_from * 1000 else None, index)
            if parts:
                msn, index = parts[-1][0], parts[-1][1]
                params = {"grant": self.grant, "_HLS_msn": msn, "_HLS_part": index + 1}

    def _segments(self, text: str, arrived: float | None) -> None:
        import av

        map_uri = ""
        for line in text.splitlines():
            if line.startswith("#EXT-X-MAP:"):
                map_uri = _attrs(line.split(":", 1)[1])["URI"]
            elif line and not line.startswith("#"):
                key = (line.split("?")[0], -1)
                if key in self._seen:
                    continue
                self._seen.add(key)
                if arrived is None:
                    continue
                init = self.http.get(f"/api/cameras/{self.camera}/live/{map_uri}").content
                media = self.http.get(f"/api/cameras/{self.camera}/live/{line}").content
                with av.open(io.BytesIO(init + media), format="mp4") as box:
                    codes = self._codes(box.decode(video=0))
                self._count(codes, arrived)

    def _decode(self, map_uri: str, uri: str, off: int, n: int, arrived: float | None, index: int) -> None:
        import av

        name = map_uri.split("?")[0]
        if name not in self._inits:
            r = self.http.get(f"/api/cameras/{self.camera}/live/{map_uri}")
            self._inits.clear()
            self._inits[name] = r.content[:self._init_len(r.content)]
        r = self.http.get(f"/api/cameras/{self.camera}/live/{uri}", headers={"Range": f"bytes={off}-{off + n - 1}"})
        with av.open(io.BytesIO(self._inits[name] + r.content), format="mp4") as box:
            stream = box.streams.video[0]
            if self._decoder is None:
                self._decoder = av.CodecContext.create(stream.codec_context.name, "r")
                self._decoder.extradata = stream.codec_context.extradata
            decoder = self._decoder
            codes = self._codes(f for p in box.demux(stream) if p.size for f in decoder.decode(p))
        if arrived is None:
            self._counted.update(codes)  # listed before the timed window: never timed later
        elif self._count(codes, arrived):
            self.by_index.append((index, arrived - codes[-1], len(codes)))

    def _codes(self, frames: Iterable[Any]) -> list[int]:
        """The time codes of decoded frames, in order; an unreadable one is counted, not guessed."""
        codes = []
        for frame in frames:
            plane = frame.planes[0]
            code = tc.decode_luma(bytes(plane), frame.width, frame.height, plane.line_size)
            if code is None:
                self.result.undecoded += 1
            else:
                codes.append(code)
        return codes

    def _count(self, codes: list[int], arrived: float) -> bool:
        """Time the frames not listed before (a frame is timed once, when first listed: as a part, or in a
        whole segment when the playlist has no parts); False if none is new."""
        new = [c for c in codes if c not in self._counted]
        self._counted.update(new)
        if not new:
            return False
        self.result.samples.append(arrived - new[-1])
        self.frames += [arrived - c for c in new]
        return True

    @staticmethod
    def _init_len(data: bytes) -> int:
        pos = 0
        while pos + 8 <= len(data):
            size = int.from_bytes(data[pos:pos + 4], "big")
            if data[pos + 4:pos + 8] == b"moof" or size < 8:
                return pos
            pos += size
        return len(data)

    def summary(self) -> Result:
        r = self.result
        newest, frames = sorted(r.samples), sorted(self.frames)
        r.parts, r.frames = len(newest), len(frames)
        if newest:
            r.newest_median_ms, r.newest_p95_ms = statistics.median(newest), percentile(newest, 95)
            r.frame_median_ms, r.frame_p95_ms = statistics.median(frames), percentile(frames, 95)
            r.frame_max_ms = frames[-1]
        r.samples = []
        return r


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="how long parts are timed")
    ap.add_argument("--warmup", type=float, default=6.0, help="seconds of following before parts are timed")
    ap.add_argument("--whole", action="store_true", help="the gateway uploads finished segments only (as before)")
    ap.add_argument("--json", type=Path, help="append the results as JSON lines")
    ap.add_argument("--verbose", action="store_true", help="print each part's index, latency and frame count")
    args = ap.parse_args()
    from civicam.audit.log import Actor
    from civicam.config.settings import get_settings
    from civicam.context import open_context
    from civicam.registry import service

    work = Path(tempfile.mkdtemp(prefix="civicam-gwlatency-"))
    mount = {"path": "/tc", "source": "timecode", "fps": 25, "bitrate_kbps": 2000, "shared": True}
    with RtspServer([mount]) as camera:
        hub = Hub(work / "hub")
        hub.setup()
        pulled_site, edge_site = hub.add_site("Pulled"), hub.add_site("Gateway")
        ctx = open_context(get_settings(data_dir=hub.data_dir))
        with ctx.db.session() as s:
            cam = service.add_camera(s, Actor(name="bench", source="bench", role="admin"), ctx.secrets, pulled_site,
                                     "pulled", camera.url("/tc"))
            cam.status = "accepted"  # the probe is not what is measured
            pulled = cam.id
        ctx.close()
        tok = hub.token(edge_site)
        hub.start()
        gw = Gateway(work / "gw", hub, tok["hub_fingerprint"], tok["token"], [{"name": "tc", "url": camera.url("/tc")}],
                     segment_target_s=SEGMENT_S, live_parts="off" if args.whole else "watched")
        gw.start()
        stop = threading.Event()
        try:
            gateway = wait_for("the gateway's camera", lambda: hub.query(
                "SELECT id FROM cameras WHERE site_id = ?", edge_site), 60)[0][0]
            for cam_id in (pulled, gateway):
                wait_for(f"segments of camera {cam_id}", lambda c=cam_id: len(hub.query(
                    "SELECT id FROM recording_segments WHERE camera_id = ?", c)) >= 2, 90)
            with httpx.Client(base_url=hub.url, verify=False, timeout=30) as http:
                admin = http.post("/api/auth/token", json={"username": "admin", "password": hub.admin_password})
                http.post("/api/users", json={"username": USER, "password": PASSWORD, "role": "admin",
                                              "view_unblurred": True},
                          headers={"Authorization": f"Bearer {admin.json()['access_token']}"}).raise_for_status()
                signed = http.post("/api/auth/token", json={"username": USER, "password": PASSWORD})
                token = signed.json()["access_token"]
            followers = [Follower(hub, token, pulled, "pulled by the hub", stop),
                         Follower(hub, token, gateway, "via gateway" + (" (whole segments)" if args.whole
                                                                       else " (streamed parts)"), stop)]
            cpu0, t0 = cpu_seconds(hub.proc.pid) if hub.proc else 0.0, time.monotonic()
            timed_from = time.time() + args.warmup
            until = timed_from + args.seconds
            threads = [threading.Thread(target=f.run, args=(timed_from, until), daemon=True) for f in followers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.warmup + args.seconds + 60)
            hub_cores = ((cpu_seconds(hub.proc.pid) if hub.proc else 0.0) - cpu0) / (time.monotonic() - t0)
        finally:
            stop.set()
            gw.stop()
            hub.stop()
    for f in followers:
        r = f.summary()
        line = {**asdict(r), "hub_cpu_cores": round(hub_cores, 3), "seconds": args.seconds}
        line.pop("samples")
        print(json.dumps(line))
        if args.verbose:
            print(f.by_index)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
