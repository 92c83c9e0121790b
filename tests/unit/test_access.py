"""The access policy's decision, as a table written out by hand (not derived from the policy itself)."""

from __future__ import annotations

import pytest

from civicam.domain.access import ROUTES, Decision, decide, matrix, rule_for

CAMERA = ("GET", "/api/cameras/{camera_id}")
USERS = ("GET", "/api/users")
LOGIN = ("POST", "/api/auth/token")
ME = ("GET", "/api/auth/me")
REGION_RULE = ("PUT", "/api/alert-rules/{rule_id}")
EXPORT = ("GET", "/api/exports/{export_id}")
AUDIT_PAGE = ("GET", "/audit")

A, B = frozenset({1}), frozenset({2})


@pytest.mark.parametrize(
    ("route", "role", "own", "sites", "expected"),
    [
        (LOGIN, None, None, None, Decision.allow),
        (ME, None, None, None, Decision.login),
        (ME, "auditor", None, None, Decision.allow),
        (CAMERA, None, None, A, Decision.login),
        (CAMERA, "admin", None, B, Decision.allow),
        (CAMERA, "operator", None, B, Decision.allow),
        (CAMERA, "auditor", None, B, Decision.allow),
        (CAMERA, "site_rep", 1, A, Decision.allow),
        (CAMERA, "site_rep", 1, B, Decision.not_found),        # another site's camera: hidden, not refused
        (CAMERA, "site_rep", None, A, Decision.not_found),     # a site rep bound to no site reaches nothing
        (CAMERA, "admin", None, None, Decision.not_found),     # no such camera
        (CAMERA, "nobody", None, A, Decision.forbidden),       # unknown roles carry nothing
        (USERS, "site_rep", 1, None, Decision.forbidden),
        (USERS, "operator", None, None, Decision.forbidden),
        (USERS, "admin", None, None, Decision.allow),
        (REGION_RULE, "site_rep", 1, frozenset(), Decision.not_found),  # a region-wide rule is not a site's
        (REGION_RULE, "operator", None, frozenset(), Decision.allow),
        (REGION_RULE, "auditor", None, A, Decision.forbidden),
        (EXPORT, "auditor", None, A, Decision.forbidden),      # no video for auditors, whatever the object
        (EXPORT, "site_rep", 1, B, Decision.not_found),
        (AUDIT_PAGE, "auditor", None, None, Decision.allow),
        (AUDIT_PAGE, "operator", None, None, Decision.forbidden),
    ],
)
def test_decide(route: tuple[str, str], role: str | None, own: int | None, sites: frozenset[int] | None,
                expected: Decision) -> None:
    assert decide(ROUTES[route], role, own, sites) is expected


def test_a_route_without_a_rule_is_refused() -> None:
    assert rule_for("GET", "/api/not-in-the-table") is None
    assert decide(None, "admin", None) is Decision.forbidden


def test_head_is_answered_like_get_and_the_matrix_lists_every_rule() -> None:
    assert rule_for("HEAD", "/api/cameras") == rule_for("GET", "/api/cameras")
    rows = matrix()
    assert len(rows) == len(ROUTES)
    assert ("GET", "/api/users", "users_write", "none") in rows
