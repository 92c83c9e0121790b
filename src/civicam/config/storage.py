"""Settings of where recordings live: the local disk (the single-machine default) or an S3-compatible store."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class StorageSettings(BaseModel):
    """``[storage]`` in TOML, ``CIVICAM_STORAGE__*`` in the environment (credentials belong there)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "s3"] = Field(
        default="local", description="'local': segments under <data_dir>/recordings; 's3': in an S3 bucket "
        "(SeaweedFS, MinIO, AWS), written through a local spool.",
    )
    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint, e.g. http://127.0.0.1:8333 for SeaweedFS; None: AWS's own."
    )
    bucket: str = Field(default="civicam", min_length=3, max_length=63, description="Bucket of the segments.")
    prefix: str = Field(
        default="", pattern=r"^([A-Za-z0-9._-]+/)*$", description="Key prefix inside the bucket ('' or 'a/b/')."
    )
    region: str = Field(default="us-east-1", description="S3 region name (SeaweedFS accepts any).")
    access_key_id: str | None = Field(
        default=None, description="S3 access key; None: boto3's own chain (AWS_ACCESS_KEY_ID, profiles, roles)."
    )
    secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key (CIVICAM_STORAGE__SECRET_ACCESS_KEY); never logged."
    )
    create_bucket: bool = Field(default=True, description="Create the bucket at start-up when it is missing.")
    multipart_threshold_bytes: int = Field(
        default=16 * 1024 * 1024, ge=5 * 1024 * 1024,
        description="Segments at least this big are uploaded in parts (S3's minimum part is 5 MiB).",
    )
    cache_bytes: int = Field(
        default=2 * 1024**3, ge=0,
        description="Local copies of published segments kept in the spool (the newest are what live view, "
        "analytics and blurring read); the oldest beyond this are dropped, they stay in the bucket.",
    )

    repair_settle_s: float = Field(
        default=0.0, ge=0, description="Start-up repair leaves unindexed objects younger than this alone: "
        "with several recorders on one bucket, another may be about to index what it just uploaded "
        "(e.g. 120 in a cluster); 0 for one recorder.",
    )

    @model_validator(mode="after")
    def _credentials_pair(self) -> StorageSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both storage.access_key_id and storage.secret_access_key, or neither")
        return self
