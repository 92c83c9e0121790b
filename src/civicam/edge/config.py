"""The gateway's configuration (``edge.toml``): the hub and its pinned certificate, the token, the spool, cameras.

Camera addresses and credentials live only here, at the site; the hub learns each camera's name and probe
verdict, never how to reach it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from civicam.auth.tls import normalise_fingerprint
from civicam.domain.policy import Policy


class EdgeCamera(BaseModel):
    """One camera on the site's network."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="The camera's name on the hub (unique per site).")
    url: str = Field(description="rtsp:// address on the site's network (credentials may be given apart).")
    username: str | None = Field(None, description="Camera user name.")
    password: str | None = Field(None, description="Camera password (prefer password_env).")
    password_env: str | None = Field(None, description="Environment variable holding the camera password.")
    view_only: bool = Field(False, description="Watched live only: probed and admitted, never recorded.")

    def secret(self) -> str | None:
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ValueError(f"camera '{self.name}': environment variable {self.password_env} is not set")
            return value
        return self.password


class EdgeConfig(BaseModel):
    """Everything a gateway is told; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    hub_url: str = Field(description="https://host:port of the hub; the gateway only ever calls out to it.")
    hub_fingerprint: str = Field(description="SHA-256 of the hub's certificate, given at enrolment (pinned).")
    token: str | None = Field(None, description="The site's enrolment token (prefer token_file or token_env).")
    token_file: Path | None = Field(None, description="File holding the token; re-read on every refusal.")
    token_env: str | None = Field(None, description="Environment variable holding the token.")
    spool_dir: Path = Field(description="Where segments wait for upload.")
    quota_bytes: int = Field(2 * 1024**3, gt=0, description="Most bytes of segments the spool keeps; beyond it the "
                             "oldest are dropped and the hub told of the gap.")
    segment_target_s: float = Field(4.0, gt=0.5, le=60, description="Segment length, as on the hub.")
    part_target_s: float = Field(0.5, gt=0.1, le=5, description="Fragment length inside a segment.")
    engine: Literal["pyav", "native"] = Field("native", description="RTSP ingest engine, as on the hub.")
    connect_timeout_s: float = Field(8.0, gt=0, description="Deadline to open a camera stream.")
    probe_seconds: float = Field(5.0, gt=0, le=120, description="How long each camera is measured before it joins.")
    policy: Policy = Field(default_factory=Policy, description="The onboarding policy (the hub's by default).")
    http_timeout_s: float = Field(20.0, gt=0, description="Deadline of each request to the hub.")
    live_parts: Literal["watched", "always", "off"] = Field(
        "watched", description="Stream the segment being recorded to the hub fragment by fragment, so the hub's "
        "live view lists its parts (latency: a part plus the upload) rather than whole segments: 'watched' while "
        "the hub says somebody watches the camera live (one request per part then, one per segment otherwise), "
        "'always', or 'off'. Only while the camera has no backlog.")
    live_poll_s: float = Field(0.02, gt=0, le=1, description="How often a streamed segment is looked at for a "
                               "new complete fragment.")
    batch_window_s: float = Field(
        0.5, ge=0, le=5, description="A finished segment waits up to this long for other cameras' segments, to go "
        "to the hub with them in one request (the hub's cost per request is most of its cost per segment).")
    batch_max: int = Field(16, ge=1, le=32, description="Most segments in one request; 1: each segment alone (tus).")
    chunk_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Most bytes sent per upload request (PATCH).")
    backoff_min_s: float = Field(0.5, gt=0, description="First retry delay after the hub could not be reached.")
    backoff_max_s: float = Field(30.0, gt=0, description="Longest retry delay (exponential with jitter).")
    health_interval_s: float = Field(10.0, gt=0, description="How often health is reported to the hub.")
    cameras: list[EdgeCamera] = Field(default_factory=list, description="The site's cameras.")

    @field_validator("hub_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("hub_url must be https://: the gateway never talks to the hub in clear")
        return value.rstrip("/")

    @field_validator("hub_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str) -> str:
        return normalise_fingerprint(value)

    @model_validator(mode="after")
    def _checks(self) -> EdgeConfig:
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError("camera names must be unique")
        if self.token is None and self.token_file is None and self.token_env is None:
            raise ValueError("give the site token as token_file, token_env or token")
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError("backoff_min_s must not exceed backoff_max_s")
        return self

    def site_token(self) -> str:
        """The token now (a rotated one is picked up from its file without a restart)."""
        if self.token_file is not None:
            return self.token_file.read_text(encoding="utf-8").strip()
        if self.token_env is not None:
            value = os.environ.get(self.token_env)
            if not value:
                raise ValueError(f"environment variable {self.token_env} (the site token) is not set")
            return value.strip()
        assert self.token is not None
        return self.token


def load_config(path: Path) -> EdgeConfig:
    """Read and validate ``edge.toml``; relative paths are taken from the file's folder."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    cfg = EdgeConfig.model_validate(raw)
    base = path.resolve().parent
    updates: dict[str, object] = {"spool_dir": (base / cfg.spool_dir).resolve()}
    if cfg.token_file is not None:
        updates["token_file"] = (base / cfg.token_file).resolve()
    return cfg.model_copy(update=updates)
