"""Settings models and their factory; nothing is read at import time."""

from civicam.config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
