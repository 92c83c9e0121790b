"""The hub's shared resources, built once from settings and handed to the API, CLI and workers."""

from __future__ import annotations

from dataclasses import dataclass, field

from civicam.analytics.shared import DetectionBoard
from civicam.config.settings import Settings
from civicam.db.session import Database, is_initialised, upgrade
from civicam.registry.secrets import SecretBox, load_or_create_key


class NotInitialised(RuntimeError):
    """The data directory or database has not been set up with ``civicam init``."""


@dataclass
class Context:
    settings: Settings
    db: Database
    secrets: SecretBox
    # Detections the blurred live view made, for analytics of the same segments (analytics/shared.py).
    detections: DetectionBoard = field(default_factory=DetectionBoard)

    def close(self) -> None:
        self.db.close()


def open_context(settings: Settings, *, create: bool = False, migrate: bool = True) -> Context:
    """Connect to the database and load the key; ``create`` makes the data directory and key if missing.

    Without ``create`` a hub that was never initialised is an error rather than a silent empty database.
    """
    if create:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    elif not settings.data_dir.exists():
        raise NotInitialised(f"Data directory {settings.data_dir} does not exist; run 'civicam init' first.")
    if not create and settings.secret_key is None and not settings.key_file.exists():
        raise NotInitialised(f"No secret key in {settings.data_dir}; run 'civicam init' first.")
    key = load_or_create_key(settings.key_file, settings.secret_key)
    db = Database(settings.effective_database_url)
    if not create and not is_initialised(db.engine):
        db.close()
        raise NotInitialised("The database has no civicam schema; run 'civicam init' first.")
    if migrate:
        upgrade(db.engine)
    return Context(settings=settings, db=db, secrets=SecretBox(key))
