"""Address decisions for cameras and webhooks (pure), by table."""

from __future__ import annotations

import ipaddress

import pytest

from civicam.domain.netpolicy import (
    AddressNotAllowed,
    check_camera_addresses,
    check_local_file,
    check_webhook_addresses,
    local_path,
    networks,
    public_unicast,
)

ip = ipaddress.ip_address


@pytest.mark.parametrize(
    ("address", "public"),
    [("8.8.8.8", True), ("2001:4860:4860::8888", True), ("127.0.0.1", False), ("::1", False),
     ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False),
     ("fe80::1", False), ("100.64.0.1", False), ("224.0.0.1", False), ("ff02::1", False), ("0.0.0.0", False),
     ("::", False), ("240.0.0.1", False), ("255.255.255.255", False), ("::ffff:127.0.0.1", False),
     ("::ffff:8.8.8.8", True), ("fc00::1", False), ("192.0.2.1", False)],
)
def test_public_unicast(address: str, public: bool) -> None:
    assert public_unicast(ip(address)) is public


def test_webhook_every_address_must_pass_unless_allowed() -> None:
    check_webhook_addresses("hooks.example", [ip("8.8.8.8")], [])
    with pytest.raises(AddressNotAllowed, match="resolves to 10.0.0.7"):
        check_webhook_addresses("hooks.example", [ip("8.8.8.8"), ip("10.0.0.7")], [])  # one bad record is enough
    with pytest.raises(AddressNotAllowed, match="does not resolve"):
        check_webhook_addresses("nowhere.example", [], [])
    check_webhook_addresses("localhost", [ip("127.0.0.1")], networks(["127.0.0.0/8"]))


def test_camera_networks() -> None:
    check_camera_addresses([ip("10.20.1.1")], None)  # no list: anywhere
    check_camera_addresses([ip("10.20.1.1")], networks(["10.20.0.0/16"]))
    with pytest.raises(AddressNotAllowed, match="outside"):
        check_camera_addresses([ip("10.20.1.1"), ip("10.30.0.1")], networks(["10.20.0.0/16"]))
    with pytest.raises(ValueError, match="CIDR"):
        networks(["10.0.0.0/40"])


def test_local_files() -> None:
    assert local_path("file:///srv/media/a%20b.mp4") == "/srv/media/a b.mp4"
    assert local_path("rtsp://10.0.0.1/x") is None
    check_local_file("admin", "/srv/media/door.mp4", ["/srv/media"])
    for role, path, dirs in (("site_rep", "/srv/media/door.mp4", ["/srv/media"]),
                             ("operator", "/srv/media/door.mp4", ["/srv/media"]),
                             ("admin", "/srv/media/door.mp4", []),
                             ("admin", "/srv/mediaX/door.mp4", ["/srv/media"]),
                             ("admin", "/srv/media", ["/srv/media"])):
        with pytest.raises(AddressNotAllowed):
            check_local_file(role, path, dirs)
