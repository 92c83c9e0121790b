"""First start of a hub: data directory, schema, encryption key and the one admin user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from civicam.audit.log import Actor, record
from civicam.auth.passwords import generate_password
from civicam.auth.tls import ensure_certificate
from civicam.auth.users import create_user
from civicam.config.settings import Settings
from civicam.context import Context, open_context
from civicam.db.models import User


@dataclass(frozen=True)
class InitResult:
    ctx: Context
    created: bool
    admin_password: str | None  # shown once, never stored in clear


def initialise(settings: Settings, actor: Actor) -> InitResult:
    """Idempotent: a hub that already has users is left exactly as it was."""
    ctx = open_context(settings, create=True)
    ensure_certificate(settings)  # for site gateways to pin; served when the hub runs with TLS
    with ctx.db.session() as s:
        if s.execute(select(func.count()).select_from(User)).scalar_one() > 0:
            return InitResult(ctx, False, None)
        password = generate_password()
        admin = create_user(s, "admin", password, "admin")
        record(s, actor, "hub.init", "hub", None, {"data_dir": str(settings.data_dir)})
        record(s, actor, "user.create", "user", admin.id, {"username": "admin", "role": "admin"})
    return InitResult(ctx, True, password)
