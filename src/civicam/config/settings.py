"""The hub's typed settings: environment variables ``CIVICAM_*`` over an optional TOML file over defaults."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from civicam.config.analytics import AnalyticsSettings
from civicam.config.cluster import ClusterSettings
from civicam.config.recording import RecordingSettings
from civicam.config.registry import RegistrySettings
from civicam.config.storage import StorageSettings
from civicam.domain.policy import Policy


class Settings(BaseSettings):
    """Everything the hub can be told; unknown keys are rejected so a typo never passes silently."""

    model_config = SettingsConfigDict(env_prefix="CIVICAM_", extra="forbid", env_nested_delimiter="__")

    data_dir: Path = Field(Path("./var"), description="Where the database, key and recordings live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default SQLite in the data directory. postgresql+psycopg://... for a city."
    )
    secret_key: str | None = Field(
        None, description="Fernet key for camera credentials; default: the key file in the data directory."
    )
    host: str = Field("127.0.0.1", description="Address the hub binds; loopback unless told otherwise.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the hub's HTTP server.")
    shutdown_grace_s: int = Field(
        10, ge=1, le=600, description="On stop, how long requests in progress may take to finish before they are "
        "cut (a gateway's segment cut short stays resumable); idle connections are closed at once.")
    token_ttl_s: int = Field(12 * 3600, ge=60, description="Lifetime of a bearer token or browser session.")
    probe_seconds: float = Field(5.0, gt=0, le=120, description="How long the onboarding probe reads a stream.")
    probe_timeout_s: float = Field(8.0, gt=0, le=120, description="Deadline for each network step of a probe.")
    probe_concurrency: int = Field(16, ge=1, le=512, description="Cameras probed at once.")
    policy: Policy = Field(default_factory=Policy, description="Default onboarding policy for every region.")
    recording: RecordingSettings = Field(
        default_factory=RecordingSettings, description="Recording, retention, reconnects and HLS."
    )
    storage: StorageSettings = Field(
        default_factory=StorageSettings, description="Where recordings live: local disk or S3-compatible."
    )
    analytics: AnalyticsSettings = Field(
        default_factory=AnalyticsSettings, description="Live entrance analytics of accepted cameras."
    )
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings, description="Recorders and analytics on a Ray cluster (civicam cluster)."
    )
    alert_webhook_url: str | None = Field(
        None, description="Default webhook that receives new alerts (JSON POST); rules may name their own."
    )
    alert_webhook_allow_networks: list[str] = Field(
        default_factory=list, description="Networks (CIDRs) webhooks may reach although they are loopback or private "
        "(tests, development); by default webhooks go to public addresses only.",
    )
    registry: RegistrySettings = Field(
        default_factory=RegistrySettings, description="Camera registry: media directories for local files."
    )
    alert_interval_s: float = Field(60.0, gt=0, description="How often alert rules are evaluated.")
    # --- edge: TLS for site gateways ---
    tls: bool = Field(False, description="Serve HTTPS (site gateways require it): the operator's tls_cert/tls_key, "
                      "else the certificate 'civicam init' generated in <data_dir>/tls.")
    tls_cert: Path | None = Field(None, description="PEM certificate the hub serves (the operator's own).")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    edge_upload_expiry_s: float = Field(
        3600.0, gt=0, description="A gateway's segment upload not finished this long after its creation is "
        "abandoned: removed with its bytes (tus Upload-Expires); the gateway then sends the segment anew.")
    # --- end edge ---
    environment: str = Field("development", description="development or production; production refuses weak set-ups.")
    # --- audit anchoring (civicam.audit.anchor) ---
    audit_signing_key: str | None = Field(
        None, description="Ed25519 private key (PEM) that signs audit checkpoints; default: the key file in the "
        "data directory's secrets/ (made on first use). Never stored in the database.")
    audit_checkpoint_interval_s: float = Field(
        300.0, gt=0, description="How often a running hub signs a checkpoint of the audit chain's head.")
    # --- end audit anchoring ---

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("alert_webhook_allow_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        from civicam.domain.netpolicy import networks

        return [str(n) for n in networks(value)]

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'civicam.db'}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"


def get_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings: explicit overrides, then ``CIVICAM_*`` variables, then the TOML file, then defaults.

    The TOML file is ``config_file``, else ``$CIVICAM_CONFIG``, else ``<data_dir>/civicam.toml`` if present.
    """
    path = config_file or (Path(os.environ["CIVICAM_CONFIG"]) if os.environ.get("CIVICAM_CONFIG") else None)
    file_values: dict[str, Any] = {}
    if path is None:
        data_dir = Path(os.environ.get("CIVICAM_DATA_DIR", overrides.get("data_dir", "./var")))
        candidate = data_dir / "civicam.toml"
        path = candidate if candidate.is_file() else None
    if path is not None:
        with open(path, "rb") as fh:
            file_values = tomllib.load(fh)
    env_values = Settings().model_dump(exclude_unset=True)
    return Settings.model_validate({**file_values, **env_values, **overrides})
