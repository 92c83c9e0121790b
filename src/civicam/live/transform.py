"""The one seam where served or exported video could be transformed (face blurring, later); none today."""

from __future__ import annotations

from collections.abc import Callable

import av

from civicam.audit.log import Actor

FrameTransform = Callable[[av.VideoFrame], av.VideoFrame]


def transform_for(actor: Actor, unblurred_reason: str | None = None) -> FrameTransform | None:
    """The frame transform to apply for ``actor``; None means frames pass untouched (remux, no re-encode).

    Blurring is not implemented yet: this returns None for everybody. When it exists it returns the
    blurring transform unless the actor has ``view_unblurred`` and states a reason; the export path
    then decodes, transforms and re-encodes, and HLS serving refuses segments it cannot transform.
    """
    return None


def wants_unblurred(actor: Actor, reason: str | None) -> bool:
    """Whether video is served unblurred: only with the permission and a stated reason."""
    return bool(actor.view_unblurred and reason and reason.strip())
