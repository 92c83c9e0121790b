"""The hub's access log leaves out a gateway's accepted segment requests and keeps everything else."""

from __future__ import annotations

import logging

import pytest

from civicam.server import RoutineUploads


def _access(method: str, path: str, status: int) -> logging.LogRecord:
    # The record uvicorn's access logger makes (uvicorn/protocols/http/*_impl.py).
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                             ("127.0.0.1:5000", method, path, "1.1", status), None)


@pytest.mark.parametrize(("method", "path", "status", "kept"), [
    ("POST", "/api/edge/uploads", 201, False),
    ("POST", "/api/edge/uploads", 200, False),
    ("PATCH", "/api/edge/uploads/ab12", 204, False),
    ("POST", "/api/edge/uploads", 460, True),     # a digest mismatch: an operator wants to see it
    ("POST", "/api/edge/uploads", 401, True),     # a revoked or wrong token
    ("PATCH", "/api/edge/uploads/ab12", 409, True),
    ("POST", "/api/edge/gaps", 201, True),        # other gateway traffic stays
    ("GET", "/api/cameras", 200, True),
    ("GET", "/api/edge/uploadsX", 200, True),     # not the uploads collection
    ("POST", "/api/edge/batches", 200, False),    # several segments; refused items are logged by the route
    ("POST", "/api/edge/batches", 400, True),     # a malformed batch
    ("POST", "/api/edge/batches/x", 200, True),
])
def test_only_accepted_segment_uploads_are_left_out(method: str, path: str, status: int, kept: bool) -> None:
    assert RoutineUploads().filter(_access(method, path, status)) is kept


def test_other_records_pass() -> None:
    other = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "started %s", ("/api/edge/uploads",),
                              None)
    assert RoutineUploads().filter(other) is True
