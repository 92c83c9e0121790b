"""Plain-words advice for every onboarding reason code: what it means and what the installer should fix."""

from __future__ import annotations

ADVICE: dict[str, tuple[str, str]] = {
    # code: (what it means, what to do)
    "resolution_too_low": (
        "The picture is smaller than the region's policy allows.",
        "Set the camera's main stream to at least the required resolution (usually 1280x720) in its web "
        "settings, or point civicam at the main stream instead of the sub-stream.",
    ),
    "fps_out_of_range": (
        "The camera sends too few (or too many) frames per second.",
        "Set the stream's frame rate within the allowed range (typically 15-30 fps) and switch off "
        "'smart' or variable frame-rate modes.",
    ),
    "unsupported_codec": (
        "The video is encoded in a format the hub does not record.",
        "Switch the stream's codec to H.264 in the camera's settings (H.265 and MJPEG are not accepted "
        "unless the region's policy allows them).",
    ),
    "default_credentials": (
        "The camera still accepts its factory user name and password.",
        "Change the camera's password to a strong, unique one, then update it here and probe again.",
    ),
    "no_auth_required": (
        "Anyone on the network can watch this camera without a password.",
        "Turn on authentication for RTSP in the camera's settings and give civicam its own account.",
    ),
    "auth_failed": (
        "The camera refused the user name or password civicam has for it.",
        "Check the user name and password (and that the account may view the stream), correct them here "
        "and probe again.",
    ),
    "unreachable": (
        "The hub could not connect to the camera.",
        "Check the address and port, that the camera is powered and on the network, and that firewalls "
        "allow the hub to reach it.",
    ),
    "no_video": (
        "The camera answered but sent no decodable video.",
        "Check the stream path (for example /stream1), that the stream is enabled, and that it carries video "
        "and not only audio.",
    ),
    "timeout": (
        "The camera started answering but too slowly, or stopped sending.",
        "Check the network link's bandwidth and stability and the camera's load; lower the bitrate if the "
        "uplink is slow, then probe again.",
    ),
}


def advice_for(code: str) -> dict[str, str]:
    meaning, fix = ADVICE.get(code, ("", "See the message above; fix the camera's set-up and probe again."))
    return {"code": code, "meaning": meaning, "fix": fix}
