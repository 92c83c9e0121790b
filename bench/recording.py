"""Recording benchmark: civicam's native and PyAV engines vs one ``ffmpeg -c copy -f segment`` per camera.

N real RTSP streams (1280x720@25 H.264, ~2 Mbit/s) are served without transcoding by the GStreamer RTSP
test server looping a pre-encoded file. For each N every recorder runs for the same window length; we report
CPU seconds per stream-minute, RSS and PSS per stream, the ratios, the server's own CPU, and whether civicam
recorded every stream without a gap. Usage::

    python bench/recording.py --n 10,50 --seconds 60 [--only native,ffmpeg]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from procstat import cpu_seconds, memory_kib  # noqa: E402

from support.rtsp import RtspServer, make_h264_file  # noqa: E402


@dataclass
class Result:
    who: str
    n: int
    seconds: float
    cpu_s: float
    cpu_per_stream_min: float
    rss_mib_per_stream: float
    pss_mib_per_stream: float
    server_cpu_s: float
    gaps: int | None = None
    reconnects: int | None = None
    recorded_s_min: float | None = None
    bad_segments: int | None = None
    lag_s_max: float | None = None
    recv_q_kib_max: float | None = None


def wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def measure(pids: list[int], server_pid: int, seconds: float) -> tuple[float, float, int, int]:
    """CPU of ``pids`` and of the server over a window; memory sampled at its end."""
    c0 = sum(cpu_seconds(p) for p in pids)
    s0 = cpu_seconds(server_pid)
    t0 = time.monotonic()
    time.sleep(seconds)  # the measurement window itself
    elapsed = time.monotonic() - t0
    cpu = sum(cpu_seconds(p) for p in pids) - c0
    server = cpu_seconds(server_pid) - s0
    mem = [memory_kib(p) for p in pids]
    return cpu / elapsed * seconds, server, sum(m[0] for m in mem), sum(m[1] for m in mem)


def unread_kib(port: int) -> float:
    """Bytes the server sent that its clients have not read yet (Recv-Q of the sockets to ``port``), KiB.

    Tells who falls behind when streams lag: a recorder that cannot keep up leaves data queued in its
    sockets; a server that cannot leaves them empty.
    """
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port:
                total += int(fields[4].split(":")[1], 16)
    return total / 1024


class QueueWatch:
    """Samples ``unread_kib`` every second on a thread; ``peak`` is the largest sample."""

    def __init__(self, port: int) -> None:
        self.port, self.peak = port, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.peak = max(self.peak, unread_kib(self.port))

    def close(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def server_pid(server: RtspServer) -> int:
    proc = server._proc  # noqa: SLF001  the controller does not expose it; the benchmark only reads /proc
    assert proc is not None
    return int(proc.pid)


def run_ffmpeg(server: RtspServer, n: int, seconds: float, work: Path) -> Result:
    procs = []
    for i in range(n):
        out = work / f"ff{i}"
        out.mkdir(parents=True)
        procs.append(subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", server.url(f"/cam{i}"),
             "-c", "copy", "-f", "segment", "-segment_time", "4", "-reset_timestamps", "1",
             str(out / "seg%05d.mp4")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        wait(lambda: all(any((work / f"ff{i}").iterdir()) for i in range(n)), 60 + n * 0.5, "ffmpeg outputs")
        cpu, srv, rss, pss = measure([p.pid for p in procs], server_pid(server), seconds)
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return Result("ffmpeg", n, seconds, cpu, cpu / n / (seconds / 60), rss / 1024 / n, pss / 1024 / n, srv)


def run_civicam(server: RtspServer, n: int, seconds: float, work: Path, engine: str = "pyav",
                extra_env: dict[str, str] | None = None, segments_dir: str = "recordings") -> Result:
    """``extra_env`` adds settings (bench/storage_s3.py: the S3 store); ``segments_dir`` is where, under the
    data directory, published segments can be read from for the spot check."""
    data = work / "hub"
    db_url = f"sqlite:///{work / 'civicam.db'}"
    env = {**os.environ, "CIVICAM_DATA_DIR": str(data), "CIVICAM_DATABASE_URL": db_url,
           "CIVICAM_RECORDING__ENGINE": engine, **(extra_env or {})}
    setup = (
        "import sys\n"
        "from civicam.audit.log import Actor\nfrom civicam.config.settings import get_settings\n"
        "from civicam.context import open_context\nfrom civicam.registry import service as r\n"
        "ctx = open_context(get_settings(), create=True)\na = Actor('bench', 'bench')\n"
        "with ctx.db.session() as s:\n"
        "    reg = r.add_region(s, a, 'bench'); site = r.add_site(s, a, reg, 'bench', 'b', 'b@example.org')\n"
        "    for i, url in enumerate(sys.argv[1:]):\n"
        "        r.add_camera(s, a, ctx.secrets, site.id, f'cam{i}', url).status = 'accepted'\n"
    )
    subprocess.run([sys.executable, "-c", setup, *[server.url(f"/cam{i}") for i in range(n)]], env=env, check=True)
    log = open(work / "civicam.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "civicam.ingest.runner"], env=env, stdout=log, stderr=log)
    db = sqlite3.connect(work / "civicam.db", timeout=30)
    try:
        def all_recording() -> bool:
            row = db.execute("select count(distinct camera_id) from recording_segments").fetchone()
            return bool(row and row[0] >= n)

        wait(all_recording, 60 + n * 0.5, "civicam segments on every camera")
        t_start = time.time()
        watch = QueueWatch(server.port)
        cpu, srv, rss, pss = measure([proc.pid], server_pid(server), seconds)
        t_end = time.time()
        recv_q = watch.close()
        # How far the newest indexed video of the most-behind camera trails the clock: about a segment
        # (4 s) plus the index batch when every stream keeps up; more when a stream runs slow.
        newest = db.execute("select max(julianday(\"end\")) from recording_segments group by camera_id").fetchall()
        lag = max((t_end - (row[0] - 2440587.5) * 86400 for row in newest), default=0.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    gaps = db.execute("select count(*) from recording_gaps").fetchone()[0]
    # Recorded span per camera inside the window: every camera must cover it without holes.
    spans = db.execute(
        "select camera_id, sum((julianday(min(\"end\", ?)) - julianday(max(start, ?))) * 86400) "
        "from recording_segments where \"end\" > ? and start < ? group by camera_id",
        [_iso(t_end), _iso(t_start), _iso(t_start), _iso(t_end)]).fetchall()
    db.close()
    recorded = min((s for _c, s in spans), default=0.0) if len(spans) == n else 0.0
    reconnects = _log_count(work / "civicam.log", "reconnecting in")
    segs_ok = _check_segments(work / "civicam.db", data / segments_dir)
    return Result(engine, n, seconds, cpu, cpu / n / (seconds / 60), rss / 1024 / n, pss / 1024 / n, srv,
                  gaps=gaps, reconnects=reconnects, recorded_s_min=round(recorded, 2), bad_segments=segs_ok,
                  lag_s_max=round(lag, 2), recv_q_kib_max=round(recv_q, 1))


def _check_segments(db_path: Path, root: Path, sample: int = 20) -> int:
    """Probe a sample of published segments: frames and duration must match what the index recorded."""
    from civicam.storage.media import probe

    db = sqlite3.connect(db_path, timeout=30)
    rows = db.execute("select path, frames, start, \"end\" from recording_segments order by random() limit ?",
                      [sample]).fetchall()
    db.close()
    bad = 0
    for path, frames, start, end in rows:
        try:
            info = probe(str(root / path))
        except Exception:  # noqa: BLE001
            bad += 1
            continue
        from datetime import datetime

        span = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
        if info.frames != frames or abs(info.duration_s - span) > 0.05:
            bad += 1
    return bad


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _log_count(path: Path, needle: str) -> int:
    return sum(1 for line in path.read_text(errors="replace").splitlines() if needle in line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="10", help="comma-separated stream counts")
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window per run")
    parser.add_argument("--only", default="native,pyav,ffmpeg", help="comma-separated: native, pyav, ffmpeg")
    parser.add_argument("--json", type=Path, default=None, help="append results as JSON lines")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="civicam-bench-"))
    try:
        clip = make_h264_file(root / "clip.h264", seconds=10, bitrate_kbps=2000)
        for n in [int(x) for x in args.n.split(",")]:
            mounts = [{"path": f"/cam{i}", "source": "file", "file": str(clip), "fps": 25, "shared": True}
                      for i in range(n)]
            results: dict[str, Result] = {}
            for who in [w for w in ("native", "pyav", "ffmpeg") if w in args.only.split(",")]:
                work = root / f"{who}-{n}"
                work.mkdir()
                # A fresh server per run so one recorder's sessions never load the other's measurement.
                with RtspServer(mounts) as server:
                    if who == "ffmpeg":
                        results[who] = run_ffmpeg(server, n, args.seconds, work)
                    else:
                        results[who] = run_civicam(server, n, args.seconds, work, engine=who)
                shutil.rmtree(work, ignore_errors=True)
                r = results[who]
                print(json.dumps(asdict(r)), flush=True)
                if args.json:
                    with open(args.json, "a") as fh:
                        fh.write(json.dumps(asdict(r)) + "\n")
            f = results.get("ffmpeg")
            for who in ("native", "pyav"):
                c = results.get(who)
                if c is None:
                    continue
                line = (f"N={n} {who}: CPU/stream-min {c.cpu_per_stream_min:.3f}s, RSS/stream "
                        f"{c.rss_mib_per_stream:.1f} MiB, server CPU {c.server_cpu_s:.1f}s, gaps {c.gaps}, "
                        f"reconnects {c.reconnects}, min recorded {c.recorded_s_min}s of {args.seconds:.0f}s, "
                        f"bad segments {c.bad_segments}, newest video lag max {c.lag_s_max}s, "
                        f"unread in sockets max {c.recv_q_kib_max} KiB")
                print(line, flush=True)
                if f is not None:
                    print(f"N={n} {who}/ffmpeg CPU per stream-minute: "
                          f"{c.cpu_per_stream_min / max(f.cpu_per_stream_min, 1e-9):.2f}x; "
                          f"RSS {c.rss_mib_per_stream / max(f.rss_mib_per_stream, 1e-9):.2f}x; "
                          f"PSS {c.pss_mib_per_stream / max(f.pss_mib_per_stream, 1e-9):.2f}x "
                          f"(ffmpeg {f.cpu_per_stream_min:.3f}s, server CPU {f.server_cpu_s:.1f}s)", flush=True)
            if "native" in results and "pyav" in results:
                print(f"N={n} native/pyav CPU per stream-minute: "
                      f"{results['native'].cpu_per_stream_min / max(results['pyav'].cpu_per_stream_min, 1e-9):.2f}x",
                      flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
