"""Roles and what each may do: a pure table, checked by the API, the web UI and the CLI alike."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    operator = "operator"
    site_rep = "site_rep"
    auditor = "auditor"


class Perm(StrEnum):
    registry_read = "registry_read"      # regions, sites, cameras, probe reports
    registry_write = "registry_write"    # add/change regions and sites
    camera_write = "camera_write"        # add/probe/disable cameras (site reps: their own site only)
    video_view = "video_view"            # live view and playback (blurred)
    video_export = "video_export"        # export clips (blurred unless view_unblurred)
    hold_write = "hold_write"            # evidence holds on recordings
    analytics_read = "analytics_read"    # aggregates and alerts
    alerts_write = "alerts_write"        # acknowledge alerts, edit alert rules
    audit_read = "audit_read"            # the audit log and its verification
    users_write = "users_write"          # create users, assign roles


GRANTS: dict[Role, frozenset[Perm]] = {
    Role.admin: frozenset(Perm),
    Role.operator: frozenset(
        {Perm.registry_read, Perm.video_view, Perm.video_export, Perm.hold_write, Perm.analytics_read,
         Perm.alerts_write}
    ),
    Role.site_rep: frozenset(
        {Perm.registry_read, Perm.camera_write, Perm.video_view, Perm.video_export, Perm.analytics_read,
         Perm.alerts_write}
    ),
    Role.auditor: frozenset({Perm.audit_read, Perm.registry_read}),
}


class SiteScope(StrEnum):
    """Which sites' objects (cameras, recordings, alerts...) a role reaches."""

    all_sites = "all_sites"
    own_site = "own_site"
    no_site = "no_site"


SCOPES: dict[Role, SiteScope] = {
    Role.admin: SiteScope.all_sites,
    Role.operator: SiteScope.all_sites,
    Role.site_rep: SiteScope.own_site,
    Role.auditor: SiteScope.all_sites,  # reads the registry (and the log) city-wide, but no video
}


def scope_of(role: str) -> SiteScope:
    """The role's object scope; unknown roles reach nothing."""
    try:
        return SCOPES[Role(role)]
    except ValueError:
        return SiteScope.no_site


def allows(role: str, perm: Perm) -> bool:
    """Whether ``role`` carries ``perm``; unknown roles carry nothing.

    >>> allows("operator", Perm.audit_read)
    False
    """
    try:
        return perm in GRANTS[Role(role)]
    except ValueError:
        return False


def sees_site(role: str, own_site_id: int | None, site_id: int) -> bool:
    """Site representatives see only their own site; every other role sees all sites (``SCOPES``)."""
    scope = scope_of(role)
    if scope is SiteScope.own_site:
        return own_site_id is not None and own_site_id == site_id
    return scope is SiteScope.all_sites
