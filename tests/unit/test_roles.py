"""The role table: who may do what, and site scoping."""

from __future__ import annotations

import pytest

from civicam.domain.roles import Perm, allows, sees_site


@pytest.mark.parametrize(
    ("role", "perm", "expected"),
    [
        ("admin", Perm.users_write, True),
        ("admin", Perm.audit_read, True),
        ("operator", Perm.video_view, True),
        ("operator", Perm.camera_write, False),
        ("operator", Perm.audit_read, False),
        ("operator", Perm.users_write, False),
        ("site_rep", Perm.camera_write, True),
        ("site_rep", Perm.registry_write, False),
        ("site_rep", Perm.audit_read, False),
        ("auditor", Perm.audit_read, True),
        ("auditor", Perm.video_view, False),
        ("auditor", Perm.camera_write, False),
        ("nobody", Perm.registry_read, False),
    ],
)
def test_grants(role: str, perm: Perm, expected: bool) -> None:
    assert allows(role, perm) is expected


@pytest.mark.parametrize(
    ("role", "own", "site", "expected"),
    [("site_rep", 1, 1, True), ("site_rep", 1, 2, False), ("site_rep", None, 1, False),
     ("operator", None, 7, True), ("admin", None, 7, True)],
)
def test_site_scope(role: str, own: int | None, site: int, expected: bool) -> None:
    assert sees_site(role, own, site) is expected
