"""Connecting to a cluster: a wrong address is a clear error at once, not minutes of Ray's retries."""

from __future__ import annotations

import importlib.util
import socket

import pytest

from support.services import require


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:", ":6379", "127.0.0.1:port"])
def test_malformed_address(address: str) -> None:
    require(importlib.util.find_spec("ray") is not None, "Ray (pip install 'civicam[cluster]')")
    from civicam.scale.runtime import check_reachable

    with pytest.raises(ConnectionError, match="not a host:port"):
        check_reachable(address)


def test_nothing_listening_and_something_listening() -> None:
    require(importlib.util.find_spec("ray") is not None, "Ray (pip install 'civicam[cluster]')")
    from civicam.scale.runtime import check_reachable

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        check_reachable(f"127.0.0.1:{port}")  # a listener: no error
    with pytest.raises(ConnectionError, match="nothing answers"):
        check_reachable(f"127.0.0.1:{port}", timeout_s=2)
