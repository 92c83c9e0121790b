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


# Credentials in the query string, as cheap HTTP cameras take them: split off like user:pass@, whatever
# the case of the key; other parameters stay in the URL, in their order.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://10.0.0.5/videostream.cgi?user=admin&pwd=S3cret",
         StreamURL("http://10.0.0.5/videostream.cgi", query_secrets="user=admin&pwd=S3cret")),
        ("http://10.0.0.5/cgi/mjpg?cmd=GetMJStream&usr=admin&PWD=x%26y&rate=0",
         StreamURL("http://10.0.0.5/cgi/mjpg?cmd=GetMJStream&rate=0", query_secrets="usr=admin&PWD=x%26y")),
        ("rtsp://10.0.0.5/live?channel=1&Password=pw&Username=u",
         StreamURL("rtsp://10.0.0.5/live?channel=1", query_secrets="Password=pw&Username=u")),
        ("http://10.0.0.5/v.mjpg?passwd=a&pass=b&auth=YWRtaW46cHc=&token=t0k&key=k3y",
         StreamURL("http://10.0.0.5/v.mjpg", query_secrets="passwd=a&pass=b&auth=YWRtaW46cHc=&token=t0k&key=k3y")),
        ("http://10.0.0.5/v.cgi?loginuse=admin&loginpas=&resolution=32",
         StreamURL("http://10.0.0.5/v.cgi?resolution=32", query_secrets="loginuse=admin&loginpas=")),
        ("http://op:pw@10.0.0.5/v.cgi?pwd=x",
         StreamURL("http://10.0.0.5/v.cgi", "op", "pw", query_secrets="pwd=x")),
        ("http://10.0.0.5/v.cgi?username_hint=a&keyframe=1&passage=2",
         StreamURL("http://10.0.0.5/v.cgi?username_hint=a&keyframe=1&passage=2")),
    ],
)
def test_query_credentials_leave_the_url(text: str, expected: StreamURL) -> None:
    parsed = parse_stream_url(text)
    assert parsed == expected
    # ... and come back when the stream is opened.
    full = with_credentials(parsed.url, parsed.username, parsed.password, parsed.query_secrets)
    assert parse_stream_url(full) == expected


def test_with_credentials_puts_query_credentials_back_without_a_user() -> None:
    assert with_credentials("http://10.0.0.5/v.cgi?rate=0", None, None, "user=a&pwd=b") == \
        "http://10.0.0.5/v.cgi?rate=0&user=a&pwd=b"
    assert with_credentials("http://10.0.0.5/v.cgi", None, None, "pwd=b") == "http://10.0.0.5/v.cgi?pwd=b"
    assert with_credentials("http://10.0.0.5/v.cgi", None, None, None) == "http://10.0.0.5/v.cgi"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://10.0.0.5/v.cgi?user=admin&pwd=S3cret failed",
         "GET http://10.0.0.5/v.cgi?user=***&pwd=*** failed"),
        ("http://h/v?cmd=x&USR=a&PWD=b&rate=0", "http://h/v?cmd=x&USR=***&PWD=***&rate=0"),
        ("rtsp://u:p@h/live?channel=1&password=pw", "rtsp://***@h/live?channel=1&password=***"),
        ("http://h/v?passwd=a&pass=b&auth=YWRt&token=t&key=k&username=u",
         "http://h/v?passwd=***&pass=***&auth=***&token=***&key=***&username=***"),
        ("http://h/v?loginuse=a&loginpas=b#frag", "http://h/v?loginuse=***&loginpas=***#frag"),
        ("http://h/v?pwd=", "http://h/v?pwd=***"),
        ("http://h/v?keyframe=1&passage=2&channel=3", "http://h/v?keyframe=1&passage=2&channel=3"),
        ("'http://h/v?pwd=s3cret' refused", "'http://h/v?pwd=***' refused"),
    ],
)
def test_redact_query_credentials(text: str, expected: str) -> None:
    assert redact(text) == expected
