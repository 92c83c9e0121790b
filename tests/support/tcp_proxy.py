"""A loopback TCP proxy that can stall one upload part-way (a real slow network, for crash tests of uploads)
or move to another backend (a load balancer switching a client to another process).

Once armed, the first client request whose bytes contain ``trigger`` (e.g. ``b"partNumber=2&"``, the
second part of an S3 multipart upload) is forwarded up to that chunk and then never read further: the
uploader blocks mid-request, as on a link that went quiet, until it is killed.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self


class LoopbackProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._trigger: bytes | None = None
        self.stalled = threading.Event()
        self._closing = threading.Event()
        self._socks: list[socket.socket] = []
        self.connections: dict[int, int] = {}  # connections made to each backend port
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="stalling-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def retarget(self, port: int) -> None:
        """Send new connections to ``port`` and cut the open ones, as a balancer failing a backend over."""
        with self._lock:
            self.target_port = port
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def arm(self, trigger: bytes) -> None:
        with self._lock:
            self._trigger = trigger

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closing.set()
        self._listener.close()
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                port = self.target_port
            self.connections[port] = self.connections.get(port, 0) + 1
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
                if from_client:
                    with self._lock:
                        hit = self._trigger is not None and self._trigger in data and not self.stalled.is_set()
                    if hit:
                        self.stalled.set()
                        self._closing.wait()  # read no more: the request hangs part-way
                        return
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
