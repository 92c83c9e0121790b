"""Resolving a camera's or webhook's address and applying ``civicam.domain.netpolicy`` to it (the I/O half)."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from civicam.domain.netpolicy import (
    AddressNotAllowed,
    IPAddress,
    check_camera_addresses,
    check_local_file,
    check_media_dir,
    check_webhook_addresses,
    local_path,
    networks,
)
from civicam.domain.policy import Policy

Resolver = Callable[[str], list[IPAddress]]


def resolve_host(host: str) -> list[IPAddress]:
    """Every address ``host`` resolves to (an address literal is itself); empty when it does not resolve."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


def _real(path: str | Path) -> str:
    return os.path.realpath(path)


def check_camera_url(url: str, role: str | None, media_dirs: Sequence[Path], policy: Policy,
                     resolve: Resolver = resolve_host) -> None:
    """Refuse (``AddressNotAllowed``) a camera URL the hub may not open.

    ``role``: who registers it (local files are for admins only); None when an already registered camera
    is checked again before a probe, where only the media directories and networks apply.
    """
    path = local_path(url)
    dirs = [_real(d) for d in media_dirs]
    if path is not None:
        if role is None:
            check_media_dir(_real(path), dirs)
        else:
            check_local_file(role, _real(path), dirs)
        return
    if policy.camera_networks is None:
        return
    host = urlsplit(url).hostname or ""
    check_camera_addresses(resolve(host), networks(policy.camera_networks))




def webhook_addresses(url: str, allow: Sequence[str], resolve: Resolver = resolve_host) -> list[IPAddress]:
    """Check a webhook URL and return the addresses its host resolves to now, every one of them allowed.

    Called when a rule is saved and again right before each delivery (a host's DNS may change between the
    two: rebinding); the delivery then connects to one of the addresses checked here.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise AddressNotAllowed("webhook_invalid", "A webhook URL must be http:// or https:// with a host.")
    addresses = resolve(parts.hostname)
    check_webhook_addresses(parts.hostname, addresses, networks(allow))
    return addresses


__all__ = ["AddressNotAllowed", "Resolver", "check_camera_url", "resolve_host", "webhook_addresses"]
