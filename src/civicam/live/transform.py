"""Which frames a viewer gets: blurred faces by default; unblurred only with the permission and a reason."""

from __future__ import annotations

from collections.abc import Callable

import av

from civicam.audit.log import Actor

FrameTransform = Callable[[av.VideoFrame], av.VideoFrame]


def wants_unblurred(actor: Actor, reason: str | None) -> bool:
    """Whether video is served unblurred: only with the ``view_unblurred`` permission and a stated reason."""
    return bool(actor.view_unblurred and reason and reason.strip())


def transform_for(actor: Actor, unblurred_reason: str | None = None) -> FrameTransform | None:
    """The frame transform for ``actor``: face blurring, or None (frames untouched) for a permitted request."""
    if wants_unblurred(actor, unblurred_reason):
        return None
    from civicam.live.privacy import FaceBlur  # the detector loads only when video is first served

    return FaceBlur()
