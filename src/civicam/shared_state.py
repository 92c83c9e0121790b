"""Objects made once, on first use, and kept on a holder (the app's ``state``): framework-free, so the
live service layer can keep its segment store and caches there without importing the web framework."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_lock = threading.RLock()  # re-entrant: making one shared object may ask for another


def keep(holder: object, name: str, make: Callable[[], T]) -> T:
    """``holder.<name>``, made by ``make`` the first time it is asked for."""
    with _lock:
        obj: T | None = getattr(holder, name, None)
        if obj is None:
            obj = make()
            setattr(holder, name, obj)
    return obj
