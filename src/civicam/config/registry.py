"""Settings of the camera registry: where local video files may be registered as cameras."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RegistrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_dirs: list[Path] = Field(
        default_factory=list,
        description="Directories whose video files admins may register as cameras (file:// or a bare path). "
        "Empty (the default): no local files at all; a file camera could otherwise read any video on the hub's "
        "disk, other sites' recordings and unblurred exports included.",
    )

    @field_validator("media_dirs")
    @classmethod
    def _absolute(cls, value: list[Path]) -> list[Path]:
        return [p.expanduser().resolve() for p in value]
