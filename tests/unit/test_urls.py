"""Stream URL parsing, credential handling and redaction."""

from __future__ import annotations

import pytest

from civicam.domain.urls import InvalidStreamURL, StreamURL, parse_stream_url, redact, with_credentials


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rtsp://admin:s3cret@127.0.0.1:8554/cam1",
            StreamURL("rtsp://127.0.0.1:8554/cam1", "admin", "s3cret"),
        ),
        ("rtsp://127.0.0.1/cam", StreamURL("rtsp://127.0.0.1/cam")),
        ("RTSP://Cam.Example:554/live?ch=1", StreamURL("rtsp://cam.example:554/live?ch=1")),
        ("rtsp://user%40city:p%3Ass@10.0.0.5/s", StreamURL("rtsp://10.0.0.5/s", "user@city", "p:ss")),
        ("rtsp://user@10.0.0.5/s", StreamURL("rtsp://10.0.0.5/s", "user", None)),
        ("https://10.0.0.5/video.mjpg", StreamURL("https://10.0.0.5/video.mjpg")),
        ("rtsp://[::1]:8554/x", StreamURL("rtsp://[::1]:8554/x")),
        ("  rtsp://127.0.0.1/cam  ", StreamURL("rtsp://127.0.0.1/cam")),
        ("/videos/door.mp4", StreamURL("file:///videos/door.mp4")),
        ("file:///videos/door.mp4", StreamURL("file:///videos/door.mp4")),
    ],
)
def test_parse_stream_url(text: str, expected: StreamURL) -> None:
    assert parse_stream_url(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "rtsp://127.0.0.1/my cam",
        "ftp://127.0.0.1/cam",
        "127.0.0.1:554/cam",
        "rtsp:///cam",
        "rtsp://127.0.0.1:99999/cam",
        "rtsp://127.0.0.1:port/cam",
        "file://",
    ],
)
def test_malformed_urls_raise(text: str) -> None:
    with pytest.raises(InvalidStreamURL):
        parse_stream_url(text)


def test_malformed_url_error_does_not_echo_credentials() -> None:
    with pytest.raises(InvalidStreamURL) as caught:
        parse_stream_url("rtsp://admin:Sup3rSecret@127.0.0.1:bad/cam")
    assert "Sup3rSecret" not in str(caught.value)


def test_with_credentials_round_trips_special_characters() -> None:
    url = with_credentials("rtsp://10.0.0.5:554/s", "op@city", "p:a/ss#1")
    assert url == "rtsp://op%40city:p%3Aa%2Fss%231@10.0.0.5:554/s"
    assert parse_stream_url(url) == StreamURL("rtsp://10.0.0.5:554/s", "op@city", "p:a/ss#1")


def test_with_credentials_without_user_is_the_bare_url() -> None:
    assert with_credentials("rtsp://10.0.0.5/s", None, "ignored") == "rtsp://10.0.0.5/s"
    assert with_credentials("rtsp://10.0.0.5/s", "u", None) == "rtsp://u@10.0.0.5/s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cannot open rtsp://admin:pw@10.0.0.5/stream", "cannot open rtsp://***@10.0.0.5/stream"),
        ("a http://u:p@h/x and rtsp://v:q@k/y", "a http://***@h/x and rtsp://***@k/y"),
        ("rtsp://10.0.0.5/no-creds", "rtsp://10.0.0.5/no-creds"),
        ("rtsp://user@10.0.0.5/s", "rtsp://***@10.0.0.5/s"),
        ("no url at all", "no url at all"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
