"""Which frames a viewer gets: blurred faces by default; unblurred only with the permission and a reason."""

from __future__ import annotations

from typing import Protocol

import av

from civicam.audit.log import Actor


class FrameTransform(Protocol):
    """Frames in, the same frames (same pts and time base) out, possibly a few frames later: a transform
    may hold frames back to look ahead. ``flush`` returns what it still holds at the end of the stream."""

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]: ...

    def flush(self) -> list[av.VideoFrame]: ...


def wants_unblurred(actor: Actor, reason: str | None) -> bool:
    """Whether video is served unblurred: only with the ``view_unblurred`` permission and a stated reason."""
    return bool(actor.view_unblurred and reason and reason.strip())


def transform_for(actor: Actor, unblurred_reason: str | None = None) -> FrameTransform | None:
    """The frame transform for ``actor``: face blurring, or None (frames untouched) for a permitted request."""
    if wants_unblurred(actor, unblurred_reason):
        return None
    from civicam.live.privacy import whole_blur  # the detector loads only when video is first served

    return whole_blur()
