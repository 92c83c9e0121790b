"""Objects an app makes once, on the first request that needs them, and keeps on ``app.state``.

The segment store (making one walks the recordings tree), the blurred-segment cache, the blur-ahead pool,
the export workers and the sign-in throttle; the app's lifespan closes those that run threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from civicam.shared_state import keep

T = TypeVar("T")


def shared(request: Request, name: str, make: Callable[[], T]) -> T:
    """``request.app.state.<name>``, made by ``make`` the first time it is asked for."""
    return keep(request.app.state, name, make)
