"""HTTP ``Range: bytes=...`` requests (RFC 9110 §14): what slice of a resource to send; no I/O.

LL-HLS lists parts as byte ranges of one file, so players fetch them with Range requests.
"""

from __future__ import annotations

import re

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(ValueError):
    """No byte of the requested range exists (HTTP 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` (stop exclusive) of the one range asked for in a resource of ``size`` bytes.

    None means "send the whole resource": no header, a malformed one, or several ranges (which a server
    may answer in full rather than as multipart). Raises ``Unsatisfiable`` when the range starts at or
    past the end.

    >>> byte_range("bytes=10-19", 100), byte_range("bytes=90-", 100), byte_range("bytes=-5", 100)
    ((10, 20), (90, 100), (95, 100))
    >>> byte_range("bytes=10-500", 100), byte_range("bytes=0-1,5-6", 100)
    ((10, 100), None)
    """
    if header is None:
        return None
    m = _SINGLE.match(header)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0:
            raise Unsatisfiable(header)
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored, as RFC 9110 allows
    if start >= size:
        raise Unsatisfiable(header)
    return start, min(size, int(last) + 1) if last else size
