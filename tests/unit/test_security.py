"""Vendor default credentials are recognised; real passwords are not."""

from __future__ import annotations

import pytest

from civicam.registry.security import DEFAULT_CREDENTIALS, is_default_credential, vendor_of


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("admin", "admin"),
        ("ADMIN", "admin"),
        ("Admin", "1234"),
        ("admin", "12345"),
        ("admin", ""),
        ("admin", None),
        ("root", ""),
        ("root", "pass"),
        ("admin", "9999"),
        ("ubnt", "ubnt"),
        ("888888", "888888"),
        ("admin", "fliradmin"),
        (" admin ", "admin"),
    ],
)
def test_known_defaults_are_detected(user: str, password: str | None) -> None:
    assert is_default_credential(user, password)


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("admin", "ADMIN"),  # passwords are case-sensitive on cameras
        ("admin", "Corr3ct-Horse"),
        ("operator", "Corr3ct-Horse"),
        ("root", "r00t-but-long"),
        (None, None),
        ("", ""),
    ],
)
def test_other_pairs_are_not_defaults(user: str | None, password: str | None) -> None:
    assert not is_default_credential(user, password)


def test_every_entry_names_a_vendor_and_is_detected() -> None:
    assert len(DEFAULT_CREDENTIALS) >= 20
    for cred in DEFAULT_CREDENTIALS:
        assert cred.vendor
        assert is_default_credential(cred.username, cred.password)


def test_vendor_is_reported_for_the_message() -> None:
    assert vendor_of("admin", "9999") == "Honeywell"
    assert vendor_of("admin", "not-default") is None
