"""The hub process: the HTTP app plus the background services (recording, analytics) under one lifecycle."""

from __future__ import annotations

import logging

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
    uvicorn.run(app, host=host, port=port, log_level="info",
                ssl_certfile=str(files[0]) if files else None, ssl_keyfile=str(files[1]) if files else None)
