"""What the HLS endpoints share: the blurred-or-not decision, grants on URLs, and segment bytes."""

from __future__ import annotations

from pathlib import Path

from fastapi import HTTPException, Request, Response

from civicam.audit.log import Actor
from civicam.context import Context
from civicam.live import grants
from civicam.live.privacy import BlurredCache
from civicam.live.transform import wants_unblurred
from civicam.storage.backend import SegmentStore
from civicam.storage.models import Segment

GRANT_PURPOSE = "unblurred-grant"


def view_grant(ctx: Context, actor: Actor, camera_id: int, unblurred_reason: str | None) -> str | None:
    """None for the default blurred view; a grant when a permitted user asks for unblurred with a reason."""
    if unblurred_reason is None:
        return None
    if not actor.view_unblurred or actor.user_id is None:
        raise HTTPException(403, "Unblurred video needs the view_unblurred permission.")
    if not wants_unblurred(actor, unblurred_reason):
        raise HTTPException(400, "State a reason to see unblurred video.")
    return grants.issue(ctx.secrets.derived_key(GRANT_PURPOSE), actor.user_id, camera_id)


def grant_ok(ctx: Context, actor: Actor, camera_id: int, grant: str | None) -> bool:
    """Whether this fetch is unblurred; a grant that does not hold is refused rather than quietly blurred."""
    if grant is None:
        return False
    if actor.view_unblurred and actor.user_id is not None and grants.valid(
            ctx.secrets.derived_key(GRANT_PURPOSE), grant, actor.user_id, camera_id):
        return True
    raise HTTPException(403, "This unblurred view has expired or is not yours; start the view again.")


def blurred_cache(request: Request, ctx: Context, store: SegmentStore) -> BlurredCache:
    cache: BlurredCache | None = getattr(request.app.state, "blurred_cache", None)
    if cache is None:
        cache = BlurredCache(ctx.settings.data_dir / "cache" / "blurred", store)
        request.app.state.blurred_cache = cache
    return cache


def segment_response(path: str | Path, init_bytes: int, part: str) -> Response:
    try:
        with open(path, "rb") as fh:
            if part == "init.mp4":
                data = fh.read(init_bytes)
            else:
                fh.seek(init_bytes)
                data = fh.read()
    except FileNotFoundError:
        raise HTTPException(404, "The segment was deleted by retention.") from None
    media = "video/mp4" if part == "init.mp4" else "video/iso.segment"
    # Segments never change once published, so players and proxies may cache them privately.
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=86400"})


def serve_segment(request: Request, ctx: Context, actor: Actor, store: SegmentStore, seg: Segment, part: str,
                  grant: str | None) -> Response:
    if grant_ok(ctx, actor, seg.camera_id, grant):
        return segment_response(store.local_path(seg.path), seg.init_bytes, part)
    try:
        blurred = blurred_cache(request, ctx, store).get(seg)
    except FileNotFoundError:
        raise HTTPException(404, "The segment was deleted by retention.") from None
    return segment_response(blurred.path, blurred.init_bytes, part)
