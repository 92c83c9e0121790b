"""The hub process: the HTTP app plus the background services (recording, analytics) under one lifecycle."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any, Final

import uvicorn

from civicam.api.app import create_app
from civicam.auth.tls import tls_files
from civicam.context import Context

log = logging.getLogger("civicam")
EDGE_UPLOADS = "/api/edge/uploads"
EDGE_BATCHES = "/api/edge/batches"


class RoutineUploads(logging.Filter):
    """Keeps a gateway's accepted segment requests out of the access log: a camera sends one every few
    seconds (50,000 lines a second at city scale), each is kept as its ``edge_uploads`` row with its times
    anyway, and formatting and writing the line was a twentieth of the hub's CPU per segment. Refusals and
    errors on the same path, and every other request, are logged as before."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:  # not uvicorn's access line: keep
            return True
        path, status = args[2], args[4]
        upload = isinstance(path, str) and (path in (EDGE_UPLOADS, EDGE_BATCHES) or path.startswith(EDGE_UPLOADS + "/"))
        return not (upload and isinstance(status, int) and 200 <= status < 300)


_NOT_HTTP: Final = object()


class Server(uvicorn.Server):
    """uvicorn's server, stopping promptly with gateways connected. Closing a TLS connection waits for the
    peer's close_notify, up to 30 s (the event loop's SSL shutdown timeout), and a gateway's idle keep-alive
    connection does not answer one until it next sends: so every stop of a hub with connected gateways took
    30 s (or a SIGKILL from a service manager). Idle connections are aborted instead (no request is lost: the
    gateway's next request opens a new connection); requests in progress get ``shutdown_grace_s`` to finish
    (a segment cut short stays resumable, or is sent again)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for conn in list(self.server_state.connections):
            # An HTTP connection's ``cycle`` is None or its latest request (h11, httptools); others (WebSockets)
            # have none and are left to uvicorn's own shutdown.
            cycle: Any = getattr(conn, "cycle", _NOT_HTTP)
            transport: Any = getattr(conn, "transport", None)
            idle = cycle is None or (cycle is not _NOT_HTTP and cycle.response_complete)
            if idle and transport is not None:
                transport.abort()
        await super().shutdown(sockets)


def run(ctx: Context, host: str, port: int, cluster: str | None = None, tls: bool = False,
        with_services: bool = True) -> None:
    """Serve until stopped; ``cluster``: recording and analytics run on that Ray cluster, not here;
    ``tls``: serve HTTPS (site gateways pin the hub's certificate); ``with_services`` False: the API and
    dashboard only (one process of a stateless API tier)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.access").addFilter(RoutineUploads())
    app = create_app(ctx, with_services=with_services, cluster=cluster)
    files = tls_files(ctx.settings) if tls or ctx.settings.tls else None
    if (tls or ctx.settings.tls) and files is None:
        raise SystemExit("TLS asked for but no certificate: set tls_cert and tls_key, or run 'civicam init'.")
    config = uvicorn.Config(app, host=host, port=port, log_level="info",
                            timeout_graceful_shutdown=ctx.settings.shutdown_grace_s,
                            ssl_certfile=str(files[0]) if files else None,
                            ssl_keyfile=str(files[1]) if files else None)
    server = Server(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:  # as uvicorn.run: the port taken, the app's start-up failed
        sys.exit(3)
