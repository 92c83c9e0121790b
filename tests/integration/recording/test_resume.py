"""After an outage, recording resumes within 2 s of the camera's return (not after a grown backoff)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from recording_helpers import LOG, add_cameras, fast_settings, file_mount, new_context, wait_for

from civicam.ingest.service import RecordingService
from civicam.ingest.supervisor import RECONNECTING
from civicam.storage.index import segments_between
from civicam.storage.models import Segment
from support.rtsp import RtspServer

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]
RESUME: dict[str, object] = {
    k: float(v) for k, v in [a.split("=") for a in os.environ.get("CIVICAM_RESUME_TEST", "").split(",") if a]
}  # the defaults (probing on); CIVICAM_RESUME_TEST=resume_window_s=0 measures backoff alone
OUTAGE_S = 7.0  # long enough for the backoff (1 s, doubling) to pass 3 s, as after the 12 s blip


def test_recording_resumes_within_2s_of_the_camera_return(clip: Path, tmp_path: Path) -> None:
    with RtspServer([file_mount("/cam", clip)]) as server:
        ctx = new_context(tmp_path)
        # The production backoff shape (doubling from 1 s up to 30 s), not the quick test settings.
        service = RecordingService(ctx, LOG, settings=fast_settings(engine="native", backoff_min_s=1.0,
                                                                    backoff_max_s=30.0, **RESUME))
        try:
            (cam,) = add_cameras(ctx, [server.url("/cam")])
            service.start()
            svc = service
            wait_for(lambda: svc.health()[cam].segments >= 1, 40, "a first segment")
            server.kill()  # the camera dies abruptly (power cut, crash)
            wait_for(lambda: svc.health()[cam].state == RECONNECTING, 20, "the outage to be noticed")
            time.sleep(OUTAGE_S)  # the outage itself (the scenario, not synchronisation)
            server.start()  # same port, same URL
            back = datetime.now(UTC)

            def resumed() -> Segment | None:
                with ctx.db.session() as s:
                    segs = [g for g in segments_between(s, cam, None, None) if g.start >= back]
                    s.expunge_all()
                return segs[0] if segs else None

            seg = wait_for(resumed, 40, "a segment after the camera came back")
            assert svc.health()[cam].reconnects >= 2  # it did back off while the camera was gone
        finally:
            service.close()
        resume_s = (seg.start - back).total_seconds()
        print(f"resume after a {OUTAGE_S:.0f}s outage: {resume_s:.2f}s")
        assert 0 <= resume_s < 2.0, resume_s
        ctx.close()
