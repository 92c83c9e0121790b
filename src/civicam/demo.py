"""The demo hub: generated video files as cameras, registered and probed, so a laptop shows the whole flow.

The two entrance cameras film visitors walking in, masked and not (civicam.demo_media), so the demo counts
people and shows a compliance figure from its first minutes; the old car-park camera shows a rejection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from civicam.audit.log import Actor
from civicam.config.settings import Settings
from civicam.context import Context
from civicam.demo_media import entrance_video, write_clip
from civicam.registry import service
from civicam.registry.onboarding import probe_cameras

DEMO_CAMERAS = (
    # name, width, height, fps: two that meet the default policy and one that does not, to show a rejection.
    ("Entrance north", 1280, 720, 25),
    ("Entrance south", 1280, 720, 20),
    ("Old car-park camera", 640, 480, 10),
)


def synth_video(path: Path, width: int, height: int, fps: int, seconds: float) -> Path:
    """A short H.264 clip of moving bars: real encoded video, no camera needed."""
    xs = np.arange(width, dtype=np.int32)
    ys = np.arange(height, dtype=np.int32)[:, None]

    def frames() -> Iterator[np.ndarray]:
        for i in range(int(seconds * fps)):
            img = np.empty((height, width, 3), np.uint8)
            img[..., 0] = ((xs + i * 8) % 256).astype(np.uint8)
            img[..., 1] = ((ys + i * 4) % 256).astype(np.uint8)
            img[..., 2] = ((xs // 64 + ys // 64 + i // fps) % 2 * 200).astype(np.uint8)
            yield img

    return write_clip(path, width, height, fps, frames(), "rgb24")


def media_dir(settings: Settings) -> Path:
    return settings.data_dir / "demo-media"


def demo_settings(settings: Settings) -> Settings:
    """The demo hub's settings: its generated clips' folder is a media directory, so its admin may register
    them as cameras (local files are refused everywhere else)."""
    dirs = settings.registry.media_dirs
    if media_dir(settings) in dirs:
        return settings
    registry = settings.registry.model_copy(update={"media_dirs": [*dirs, media_dir(settings)]})
    return settings.model_copy(update={"registry": registry})


def build_demo(ctx: Context, actor: Actor, seconds: float = 30.0) -> list[int]:
    """Register the demo region, site and cameras (once) and probe them; returns the camera ids.

    ``ctx.settings`` must list the demo's media folder as a media directory (``demo_settings``).
    """
    media = media_dir(ctx.settings)
    with ctx.db.session() as s:
        try:
            region = service.find_region(s, "Demo City")
        except service.NotFound:
            region = service.add_region(s, actor, "Demo City")
        sites = [x for x in service.list_sites(s, actor, region.id) if x.name == "Central Mall"]
        site = sites[0] if sites else service.add_site(
            s, actor, region, "Central Mall", "Demo Contact", "security@mall.example", "+1 555 0100")
        existing = {c.name: c.id for c in service.list_cameras(s, actor, site_id=site.id)[0]}
        site_id = site.id
    ids: list[int] = []
    for name, w, h, fps in DEMO_CAMERAS:
        if name in existing:
            ids.append(existing[name])
            continue
        stem = media / f"{name.lower().replace(' ', '-')}-{w}x{h}-{fps}fps"
        clip = (entrance_video(stem.with_suffix(".people.mp4"), w, h, fps, seconds, seed=len(ids) + 1)
                if name.startswith("Entrance") else synth_video(stem.with_suffix(".mp4"), w, h, fps, seconds))
        with ctx.db.session() as s:
            ids.append(service.add_camera(s, actor, ctx.secrets, site_id, name, str(clip),
                                          media_dirs=ctx.settings.registry.media_dirs).id)
    probe_cameras(ctx, actor, ids, seconds=3.0)
    return ids
