"""A hub in a process of its own for black-box tests: ``python tests/support/hub_process.py DATA_DIR PORT``.

The API and dashboard only (no recording, analytics or alert services: nothing it serves may make it
reach out to a camera or webhook a fuzzer registered), on 127.0.0.1, over an initialised data directory.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(data_dir: str, port: str) -> None:
    import uvicorn

    from civicam.api.app import create_app
    from civicam.config.settings import get_settings
    from civicam.context import open_context

    ctx = open_context(get_settings(data_dir=Path(data_dir)))
    uvicorn.run(create_app(ctx), host="127.0.0.1", port=int(port), log_level="warning", access_log=False)


if __name__ == "__main__":
    main(*sys.argv[1:3])
