"""Objects an app makes once, on the first request that needs them, and keeps on ``app.state``.

The segment store (making one walks the recordings tree), the blurred-segment cache, the blur-ahead pool
and the export workers; the app's lifespan closes those that run threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")
_lock = threading.RLock()  # re-entrant: making one shared object may ask for another


def shared(request: Request, name: str, make: Callable[[], T]) -> T:
    """``request.app.state.<name>``, made by ``make`` the first time it is asked for."""
    with _lock:
        obj: T | None = getattr(request.app.state, name, None)
        if obj is None:
            obj = make()
            setattr(request.app.state, name, obj)
    return obj
