"""Vendor default camera credentials, which civicam refuses to onboard (they are the first thing botnets try)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DefaultCredential:
    """A factory-default login shipped by a camera or NVR vendor."""

    username: str
    password: str
    vendor: str


DEFAULT_CREDENTIALS: tuple[DefaultCredential, ...] = (
    DefaultCredential("admin", "admin", "generic / many OEMs"),
    DefaultCredential("admin", "", "generic / Dahua, Samsung older firmware"),
    DefaultCredential("admin", "12345", "Hikvision (pre-2015 firmware)"),
    DefaultCredential("admin", "123456", "generic Chinese OEMs / Uniview"),
    DefaultCredential("admin", "1234", "generic / Amcrest, Foscam-era"),
    DefaultCredential("Admin", "1234", "Vivotek / Arecont (capitalised)"),
    DefaultCredential("admin", "password", "generic / Swann, Q-See"),
    DefaultCredential("admin", "9999", "Honeywell"),
    DefaultCredential("admin", "4321", "Samsung / Hanwha older models"),
    DefaultCredential("admin", "meinsm", "Mobotix"),
    DefaultCredential("admin", "fliradmin", "FLIR"),
    DefaultCredential("admin", "jvc", "JVC"),
    DefaultCredential("admin", "admin123", "generic"),
    DefaultCredential("admin", "888888", "Dahua (local console)"),
    DefaultCredential("admin", "666666", "Dahua (remote)"),
    DefaultCredential("888888", "888888", "Dahua"),
    DefaultCredential("666666", "666666", "Dahua"),
    DefaultCredential("admin", "pass", "generic"),
    DefaultCredential("admin", "system", "generic NVRs"),
    DefaultCredential("admin", "1111", "generic"),
    DefaultCredential("admin", "11111", "generic"),
    DefaultCredential("admin", "54321", "generic"),
    DefaultCredential("root", "root", "generic Linux-based cameras"),
    DefaultCredential("root", "", "generic Linux-based cameras"),
    DefaultCredential("root", "pass", "Axis (older firmware)"),
    DefaultCredential("root", "admin", "generic"),
    DefaultCredential("root", "ikwd", "Vivotek / Avigilon OEM"),
    DefaultCredential("root", "camera", "generic"),
    DefaultCredential("root", "12345", "generic"),
    DefaultCredential("root", "4321", "Samsung older models"),
    DefaultCredential("supervisor", "supervisor", "Everfocus / generic NVRs"),
    DefaultCredential("ubnt", "ubnt", "Ubiquiti"),
    DefaultCredential("service", "service", "Bosch / Panasonic service account"),
    DefaultCredential("Administrator", "", "generic"),
    DefaultCredential("admin", "ikwd", "Vivotek"),
    DefaultCredential("user", "user", "generic"),
    DefaultCredential("guest", "guest", "generic"),
    DefaultCredential("operator", "operator", "generic"),
)

_INDEX: frozenset[tuple[str, str]] = frozenset(
    (c.username.casefold(), c.password) for c in DEFAULT_CREDENTIALS
)


def is_default_credential(username: str | None, password: str | None) -> bool:
    """Whether the pair is a known vendor default; usernames match case-insensitively, passwords exactly.

    >>> is_default_credential("ADMIN", "admin")
    True
    >>> is_default_credential("operator", "Corr3ct-Horse")
    False
    """
    if username is None:
        return False  # no credentials at all is a different finding (an open stream), not a default
    return (username.strip().casefold(), password or "") in _INDEX


def vendor_of(username: str | None, password: str | None) -> str | None:
    """The vendor a default pair comes from, for the message shown to the operator; None if not default."""
    if not is_default_credential(username, password):
        return None
    user = (username or "").strip().casefold()
    return next(
        c.vendor for c in DEFAULT_CREDENTIALS if (c.username.casefold(), c.password) == (user, password or "")
    )
