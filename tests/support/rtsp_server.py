"""Real RTSP test server on GstRtspServer; run with the system python (needs gi), prints READY <port>."""

# Usage: /usr/bin/python3 rtsp_server.py --port 0 --mounts '<json>'   (or --mounts - to read stdin)
#
# Each mount is a JSON object:
#   {"path": "/good", "source": "test", "width": 1280, "height": 720, "fps": 25,
#    "codec": "h264" | "h265" | "mjpeg" | "mpeg4", "bitrate_kbps": 2000, "pattern": "ball",
#    "shared": true, "auth": {"user": "operator", "password": "...", "method": "basic" | "digest"},
#    "bframes": 2, "profile": "main" | "high"}   (B-frames: x264 main/high or x265; no zerolatency tune)
#   {"path": "/rec1", "source": "file", "file": "/abs/clip.h264", "fps": 25, "shared": true}
#   {"path": "/audio", "source": "audio_only"}
#   {"path": "/tc", "source": "timecode", "fps": 25, "bitrate_kbps": 2000, "shared": true,
#    "backdrop": "/abs/frame.i420"}
#     (1280x720 frames whose block row carries their production time in Unix ms, see timecode.py; on
#     mid-grey, or on the optional backdrop: one raw 1280x720 I420 frame, e.g. with faces to blur)
# This file must stay importable without the venv: standard library and gi only.

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer


def _pick_free_port() -> int:
    # GstRtspServer can bind port 0 itself, but we must learn the port before attaching to print it;
    # asking the kernel first is simpler and the window for a race is tiny on a test box.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _video_encoder(codec: str, fps: int, kbps: int, bframes: int = 0, profile: str = "main") -> str:
    gop = max(1, fps * 2)
    if codec == "h264" and bframes:
        # No tune=zerolatency (it turns B-frames off); b-adapt off so every GOP really has them.
        return (
            f"x264enc speed-preset=superfast key-int-max={gop} bitrate={kbps} bframes={bframes} b-adapt=false "
            f"! video/x-h264,profile={profile} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"
        )
    if codec in ("h265", "hevc") and bframes:
        return (
            f"x265enc speed-preset=ultrafast key-int-max={gop} bitrate={kbps} "
            f'option-string="bframes={bframes}:b-adapt=0:open-gop=0:repeat-headers=1" '
            "! h265parse ! rtph265pay name=pay0 pt=96 config-interval=1"
        )
    if codec == "h264":
        return (
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} "
            "! video/x-h264,profile=baseline ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"
        )
    if codec in ("h265", "hevc"):
        return (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} "
            "! h265parse ! rtph265pay name=pay0 pt=96 config-interval=1"
        )
    if codec == "mjpeg":
        return "jpegenc quality=50 ! rtpjpegpay name=pay0 pt=26"
    if codec == "mpeg4":
        return (
            f"avenc_mpeg4 bitrate={kbps * 1000} gop-size={gop} ! rtpmp4vpay name=pay0 pt=96 config-interval=1"
        )
    raise ValueError(f"unknown codec {codec!r}")


def launch_line(mount: dict[str, Any]) -> str:
    """The gst-rtsp-server launch description for one mount."""
    source = mount.get("source", "test")
    if source == "audio_only":
        return ("( audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=8000,channels=1 ! mulawenc"
                " ! rtppcmupay name=pay0 pt=0 )")
    if source == "file":
        fps = int(mount.get("fps", 25))
        # multifilesrc loop=true replays the bytes forever; h264parse interpolates timestamps from the
        # frame rate, so they keep increasing across the loop and nothing is decoded or re-encoded.
        # The file must be Annex-B H.264 without B-frames (see rtsp.make_h264_file).
        location = str(mount["file"]).replace('"', '\\"')
        return (
            f'( multifilesrc location="{location}" loop=true '
            f'caps="video/x-h264,stream-format=byte-stream,framerate={fps}/1" '
            "! h264parse name=parse ! video/x-h264,alignment=au ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
    if source == "timecode":
        tc = _timecode()
        fps = int(mount.get("fps", 25))
        kbps = int(mount.get("bitrate_kbps", 2000))
        # Frames are pushed by _TimecodeFeeder on a timer; do-timestamp stamps each with the running time
        # at its push, and the small leaky queue keeps a paused (not yet PLAYing) media from piling frames up.
        return (
            f"( appsrc name=tcsrc is-live=true format=time do-timestamp=true max-buffers=2 leaky-type=downstream "
            f'caps="video/x-raw,format=I420,width={tc.WIDTH},height={tc.HEIGHT},framerate={fps}/1" '
            f"! queue leaky=downstream max-size-buffers=2 ! {_video_encoder('h264', fps, kbps)} )"
        )
    if source != "test":
        raise ValueError(f"unknown source {source!r}")
    width = int(mount.get("width", 1280))
    height = int(mount.get("height", 720))
    fps = int(mount.get("fps", 25))
    kbps = int(mount.get("bitrate_kbps", 2000))
    pattern = str(mount.get("pattern", "ball"))
    codec = str(mount.get("codec", "h264"))
    encoder = _video_encoder(codec, fps, kbps, int(mount.get("bframes", 0)), str(mount.get("profile", "main")))
    return (
        f"( videotestsrc is-live=true pattern={pattern} "
        f"! video/x-raw,width={width},height={height},framerate={fps}/1,format=I420 "
        f"! timeoverlay ! queue leaky=downstream max-size-buffers=2 ! {encoder} )"
    )


ANONYMOUS = "anonymous"


def _permissions(access: list[str], construct: list[str]) -> GstRtspServer.RTSPPermissions:
    perms = GstRtspServer.RTSPPermissions()
    for role in access:
        perms.add_permission_for_role(role, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role(
            role, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, role in construct
        )
    return perms


def _token(role: str) -> GstRtspServer.RTSPToken:
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, role)
    return token


def build_server(port: int, mounts: list[dict[str, Any]]) -> GstRtspServer.RTSPServer:
    """A server bound to 127.0.0.1:port with every mount; protected mounts answer 401 without creds."""
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    points = server.get_mount_points()
    users = {m["auth"]["user"]: m["auth"]["password"] for m in mounts if m.get("auth")}
    digest = {m["auth"]["user"] for m in mounts if m.get("auth", {}).get("method") == "digest"}
    user_roles = [f"user-{u}" for u in users]
    if users:
        auth = GstRtspServer.RTSPAuth()
        # Clients without credentials get the anonymous role. Every role may *see* every mount (a
        # denied access check answers 404, and clients only send credentials after a 401), but only
        # the mount's own user may *construct* a protected one: anonymous DESCRIBE gets 401 + challenge.
        auth.set_default_token(_token(ANONYMOUS))
        for user, password in users.items():
            if user in digest:
                # Digest (RFC 2617, MD5): the server challenges with a nonce and never sees the password.
                auth.add_digest(user, password, _token(f"user-{user}"))
            else:
                auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), _token(f"user-{user}"))
        if digest:
            # One method per server (the binding takes a single enum value): a server with a digest mount
            # challenges for Digest only, so a client cannot fall back to sending the password in Basic.
            if len(digest) != len(users):
                raise ValueError("digest and basic mounts need separate servers")
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
    for mount in mounts:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(mount))
        factory.set_shared(bool(mount.get("shared", False)))
        if users:
            creds = mount.get("auth")
            everyone = [ANONYMOUS, *user_roles]
            factory.set_permissions(_permissions(everyone, [f"user-{creds['user']}"] if creds else everyone))
        if mount.get("source") == "file":
            factory.connect("media-configure", _on_file_media)
        if mount.get("source") == "timecode":
            backdrop = Path(mount["backdrop"]).read_bytes() if mount.get("backdrop") else None
            factory.connect("media-configure", _on_timecode_media, int(mount.get("fps", 25)), backdrop)
        points.add_factory(mount["path"], factory)
    return server


def _copy_dts_to_pts(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    buf = info.get_buffer()
    if buf is not None:
        buf.pts = buf.dts
    return Gst.PadProbeReturn.OK


def _on_file_media(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
    # h264parse interpolates only DTS on a raw elementary stream, and rtph264pay stamps RTP time from
    # PTS; the served files have no B-frames, so PTS == DTS is exact.
    parse = media.get_element().get_by_name("parse")
    parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, _copy_dts_to_pts)


def _timecode() -> Any:
    # A stdlib-only sibling module (the tests import it too), loaded only by timecode mounts; run as a
    # script this directory is already on sys.path, imported from elsewhere it is added here.
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import timecode

    return timecode


class _TimecodeFeeder:
    """Pushes one frame per 1/fps of wall time into a media's appsrc, each painted with time.time() in ms."""

    TICK_MS = 4  # timer granularity: a frame leaves at most this late

    def __init__(self, appsrc: Gst.Element, fps: int, backdrop: bytes | None) -> None:
        self._tc = _timecode()
        self._backdrop = backdrop
        self._src = appsrc
        self._period = 1.0 / fps
        self._duration = Gst.SECOND // fps
        self._due = time.monotonic()
        self._source_id: int | None = GLib.timeout_add(self.TICK_MS, self._tick)

    def _tick(self) -> bool:
        now = time.monotonic()
        if now < self._due:
            return True
        # After a stall (a busy box) skip the missed frames instead of bursting them out.
        self._due = self._due + self._period if now - self._due < self._period else now + self._period
        buf = Gst.Buffer.new_wrapped(self._tc.frame_i420(int(time.time() * 1000), self._backdrop))
        buf.duration = self._duration
        self._src.emit("push-buffer", buf)
        return True

    def stop(self, *_args: Any) -> None:
        if self._source_id is not None:
            GLib.source_remove(self._source_id)
            self._source_id = None


def _on_timecode_media(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia,
                       fps: int, backdrop: bytes | None) -> None:
    feeder = _TimecodeFeeder(media.get_element().get_by_name("tcsrc"), fps, backdrop)
    media.connect("unprepared", feeder.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mounts", default="-", help="JSON list of mounts, or - for stdin")
    args = parser.parse_args(argv)
    raw = sys.stdin.read() if args.mounts == "-" else args.mounts
    mounts = json.loads(raw)
    Gst.init(None)
    port = args.port or _pick_free_port()
    server = build_server(port, mounts)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"ERROR cannot bind 127.0.0.1:{port}", flush=True)
        return 2
    # Sessions of clients that vanish must be reaped, or a long benchmark leaks pipelines.
    pool = server.get_session_pool()
    GLib.timeout_add_seconds(2, lambda: (pool.cleanup(), True)[1])
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, lambda *_: (loop.quit(), False)[1])
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
