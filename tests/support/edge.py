"""Real processes for edge tests: a hub (``civicam serve --tls``), site gateways (``civicam edge run``), and a
TCP relay between them whose port can be closed and reopened (a cut link) and whose rate can be limited."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CIVICAM = [sys.executable, "-m", "civicam"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], deadline_s: float, every_s: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}")
        time.sleep(every_s)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _toml(value: Any) -> str:
    """A TOML value: JSON's scalars and arrays are TOML's; a dict becomes an inline table."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


class Hub:
    """A hub data directory and its ``civicam serve --tls`` process, restartable on the same port."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.data_dir = root
        self.port = port or free_port()
        self.env = {**os.environ, "CIVICAM_DATA_DIR": str(root), "CIVICAM_ANALYTICS__ENABLED": "false",
                    "CIVICAM_RECORDING__CLEANER_INTERVAL_S": "3600"}
        self.env.pop("CIVICAM_DATABASE_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root.parent / f"{root.name}.log"
        self.admin_password = ""

    def cli(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*CIVICAM, *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert r.returncode == code, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self.cli(*args, "--json", code=code).stdout)

    def setup(self) -> None:
        self.admin_password = str(self.json("init")["admin_password"])
        self.json("region", "add", "North")

    def add_site(self, name: str) -> int:
        site = self.json("site", "add", "--region", "North", "--name", name, "--contact-name", "Ana",
                         "--contact-email", "ana@site.example")
        return int(site["id"])

    def token(self, site_id: int, *flags: str) -> dict[str, Any]:
        data: dict[str, Any] = self.json("site", "token", str(site_id), *flags)
        return data

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*CIVICAM, "serve", "--tls", "--port", str(self.port)], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("the hub to answer over TLS", self._up, 60)

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the hub exited with {self.proc.returncode}; see {self.log}")
        try:
            return httpx.get(f"{self.url}/healthz", verify=False, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data_dir / "civicam.db", timeout=30)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.db() as conn:
            return list(conn.execute(sql, params).fetchall())


class Gateway:
    """One ``civicam edge run`` process with its edge.toml and spool."""

    def __init__(self, root: Path, hub: Hub | None, fingerprint: str, token: str, cameras: list[dict[str, Any]],
                 hub_url: str | None = None, **settings: Any) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.spool = root / "spool"
        self.token_file = root / "site.token"
        self.token_file.write_text(token)
        self.config = root / "edge.toml"
        url = hub_url or (hub.url if hub is not None else None)
        assert url is not None, "a hub or its URL"
        values: dict[str, Any] = {"hub_url": url, "hub_fingerprint": fingerprint,
                                  "token_file": "site.token", "spool_dir": "spool", "segment_target_s": 2.0,
                                  "probe_seconds": 1.5, "backoff_min_s": 0.3, "backoff_max_s": 3.0,
                                  "health_interval_s": 2.0, **settings}
        lines = [f"{k} = {_toml(v)}" for k, v in values.items()]
        for cam in cameras:
            lines.append("[[cameras]]")
            lines += [f"{k} = {_toml(v)}" for k, v in cam.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.env = {**os.environ}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "gateway.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*CIVICAM, "edge", "run", "--config", str(self.config)], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def recorded(self) -> list[dict[str, Any]]:
        """The gateway's journal: every segment it recorded, with the SHA-256 it took at the time."""
        path = self.spool / "recorded.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def waiting(self) -> list[Path]:
        """Segments still in the spool (published, not yet delivered)."""
        return sorted((self.spool / "segments").rglob("*.mp4"))

    def health(self) -> dict[str, Any]:
        path = self.spool / "health.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Relay:
    """A TCP relay 127.0.0.1:port -> target; ``cut`` closes the port and every connection, ``reopen`` listens
    again on the same port. ``rate`` (bytes/s) limits gateway-to-hub bytes so an upload takes a while."""

    def __init__(self, target_port: int, rate: int | None = None) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.rate = rate
        self.forwarded = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limited: bool) -> None:
        try:
            while True:
                data = src.recv(16384 if not (limited and self.rate) else max(1024, self.rate // 20))
                if not data:
                    break
                dst.sendall(data)
                if limited:
                    with self._lock:
                        self.forwarded += len(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Close the listening port and reset every open connection (the link is down)."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
            except OSError:
                pass

    def reopen(self) -> None:
        self.open()
