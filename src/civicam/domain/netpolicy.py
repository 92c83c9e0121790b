"""Which addresses and files the hub may be pointed at: pure decisions, the resolving is done by the caller.

* Camera URLs: a local file (``file://`` or a bare path) only for admins and only inside a configured
  media directory (none by default, so no local files at all); a network camera only inside its region's
  camera networks when the region lists any.
* Webhook URLs: only public unicast addresses (no loopback, link-local, private, shared, multicast,
  unspecified or reserved ones), unless an address is inside an explicitly configured allow-list (tests,
  development). Every address a host resolves to is checked, so one public record cannot smuggle in a
  private one, and the check is repeated when sending (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit
from urllib.request import url2pathname

from civicam.domain.roles import Role

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressNotAllowed(ValueError):
    """The URL points where the hub may not go; the message says why and what to change."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDRs (``ValueError`` names the bad one)."""
    out = []
    for text in cidrs:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"'{text}' is not a network in CIDR notation (e.g. 10.20.0.0/16)") from None
    return tuple(out)


def local_path(url: str) -> str | None:
    """The file a ``file://`` URL names (percent-decoding undone), None for network URLs."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    return url2pathname(parts.path)


def check_local_file(role: str, real_path: str, real_media_dirs: Sequence[str]) -> None:
    """A local file may be a camera only for admins and only inside a media directory.

    Both sides are real paths (symlinks and ``..`` resolved by the caller), so a link inside a media
    directory that points out of it is refused.

    >>> check_local_file("admin", "/srv/media/door.mp4", ["/srv/media"])
    >>> try:
    ...     check_local_file("admin", "/srv/media-other/x.mp4", ["/srv/media"])
    ... except AddressNotAllowed as exc:
    ...     print(exc.code)
    local_file_not_allowed
    """
    if role != Role.admin:
        raise AddressNotAllowed("local_file_not_allowed",
                                "Only admins may register a local file as a camera; give the camera's network "
                                "address (rtsp://, http://).")
    check_media_dir(real_path, real_media_dirs)


def check_media_dir(real_path: str, real_media_dirs: Sequence[str]) -> None:
    """The file must lie inside one of the media directories (all real paths)."""
    if not real_media_dirs:
        raise AddressNotAllowed("local_file_not_allowed",
                                "Local files are not accepted as cameras on this hub (no media directory is "
                                "configured: registry.media_dirs).")
    for root in real_media_dirs:
        if os.path.commonpath([root, real_path]) == root and real_path != root:
            return
    raise AddressNotAllowed("local_file_not_allowed",
                            "Local files are accepted only inside the hub's media directories (registry.media_dirs);"
                            f" none of them holds {real_path}.")


def check_camera_addresses(addresses: Sequence[IPAddress], allowed: Sequence[IPNetwork] | None) -> None:
    """With a region's camera networks set, every address of the camera must lie inside one of them."""
    if allowed is None:
        return
    if not addresses:
        raise AddressNotAllowed("network_not_allowed", "The camera's host name does not resolve to any address.")
    outside = [a for a in addresses if not any(a in net for net in allowed)]
    if outside:
        shown = ", ".join(str(n) for n in allowed)
        raise AddressNotAllowed("network_not_allowed",
                                f"The camera's address {outside[0]} is outside the region's camera networks "
                                f"({shown}).")


def public_unicast(address: IPAddress) -> bool:
    """Whether an address is a public unicast one (what a webhook may reach without an allow-list).

    >>> public_unicast(ipaddress.ip_address("8.8.8.8")), public_unicast(ipaddress.ip_address("169.254.169.254"))
    (True, False)
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return public_unicast(address.ipv4_mapped)
    return not (address.is_loopback or address.is_link_local or address.is_private or address.is_multicast
                or address.is_unspecified or address.is_reserved or not address.is_global)


def check_webhook_addresses(host: str, addresses: Sequence[IPAddress], allow: Sequence[IPNetwork]) -> None:
    """Every address ``host`` resolves to must be public, or inside the configured allow-list."""
    if not addresses:
        raise AddressNotAllowed("webhook_unresolvable", f"The webhook host '{host}' does not resolve.")
    for address in addresses:
        if any(address in net for net in allow):
            continue
        if not public_unicast(address):
            raise AddressNotAllowed(
                "webhook_address_not_allowed",
                f"The webhook host '{host}' resolves to {address}, a loopback, private, link-local, multicast or "
                "reserved address; webhooks go to public addresses only (alert_webhook_allow_networks lists "
                "exceptions).")
