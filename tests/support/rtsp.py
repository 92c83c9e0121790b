"""Controller for the GStreamer RTSP test server (runs under the system python) and test media helpers."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
START_DEADLINE_S = 20.0

Mount = dict[str, Any]


def gst_rtsp_available() -> bool:
    """Whether the system python can import GstRtspServer (the venv cannot, by design)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    try:
        done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class RtspServer:
    """One rtsp_server.py process serving ``mounts`` on 127.0.0.1; restartable on the same port."""

    def __init__(self, mounts: list[Mount], port: int = 0) -> None:
        self.mounts = list(mounts)
        self._port = port
        self._proc: subprocess.Popen[str] | None = None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the RTSP server has not been started")
        return self._port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def url(self, path: str, user: str | None = None, password: str | None = None) -> str:
        path = path if path.startswith("/") else "/" + path
        auth = ""
        if user is not None:
            auth = (
                quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "") + "@"
            )
        return f"rtsp://{auth}127.0.0.1:{self.port}{path}"

    def start(self) -> RtspServer:
        if self.running:
            return self
        # GStreamer chatter is dropped unless RTSP_SERVER_LOG names a file to append it to (debugging).
        log_path = os.environ.get("RTSP_SERVER_LOG")
        log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self._port), "--mounts", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log if log is not None else subprocess.DEVNULL,
                text=True,
                # Its own process group, so a SIGINT to pytest does not race our orderly stop.
                start_new_session=True,
            )
        finally:
            if log is not None:
                log.close()  # the child holds its own copy of the descriptor
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(self.mounts))
        self._proc.stdin.close()
        self._port = self._wait_ready(self._proc)
        return self

    def _wait_ready(self, proc: subprocess.Popen[str]) -> int:
        assert proc.stdout is not None
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError(f"RTSP server did not report READY within {START_DEADLINE_S:.0f}s")
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                continue
            line = proc.stdout.readline()
            if not line:  # EOF: the server died before binding
                code = proc.wait()
                raise RuntimeError(f"RTSP server exited with status {code} before READY")
            if line.startswith("READY "):
                return int(line.split()[1])
            if line.startswith("ERROR"):
                self.kill()
                raise RuntimeError(f"RTSP server failed: {line.strip()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Orderly shutdown (SIGTERM), escalating to SIGKILL."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close(proc)

    def kill(self) -> None:
        """Abrupt death (SIGKILL), as a crashed camera or server would look to clients."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close(proc)

    def _close(self, proc: subprocess.Popen[str]) -> None:
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None

    def restart(self) -> RtspServer:
        """Stop if running, then start again on the same port (clients reconnect to the same URLs)."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def make_h264_file(
    path: str | Path,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    seconds: float = 4.0,
    bitrate_kbps: int = 2000,
) -> Path:
    """A pre-encoded H.264 clip with moving content, keyframe every 2 s and no B-frames.

    ``.h264``/``.264`` gives an Annex-B elementary stream (what the server's ``file`` source loops);
    any other suffix (``.mp4``, ``.mkv``) gives that container.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    gop = fps * 2
    cmd = [
        ffmpeg, "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}",
        "-t", f"{seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        # No B-frames: the looping server derives PTS from DTS. CBR-ish so the bitrate is what was asked.
        "-bf", "0", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-b:v", f"{bitrate_kbps}k", "-maxrate", f"{bitrate_kbps}k", "-bufsize", f"{bitrate_kbps}k",
    ]  # fmt: skip
    if out.suffix in (".h264", ".264"):
        cmd += ["-bsf:v", "h264_mp4toannexb", "-f", "h264"]
    cmd.append(str(out))
    subprocess.run(cmd, check=True, timeout=120)
    return out
