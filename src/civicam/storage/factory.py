"""The hub's segment store, chosen by ``storage.backend``: the local disk (default) or an S3 bucket."""

from __future__ import annotations

from civicam.config.settings import Settings
from civicam.storage.backend import LocalDiskStore, SegmentStore


def open_store(settings: Settings) -> SegmentStore:
    """``<data_dir>/recordings`` on the local disk, or the configured bucket spooled through ``<data_dir>/spool``."""
    cfg = settings.storage
    if cfg.backend == "local":
        return LocalDiskStore(settings.data_dir / "recordings")
    from civicam.storage.s3 import S3Store, s3_client

    secret = cfg.secret_access_key.get_secret_value() if cfg.secret_access_key is not None else None
    client = s3_client(cfg.endpoint_url, cfg.region, cfg.access_key_id, secret)
    return S3Store(client, cfg.bucket, settings.data_dir / "spool", prefix=cfg.prefix,
                   multipart_threshold=cfg.multipart_threshold_bytes, cache_bytes=cfg.cache_bytes,
                   create_bucket=cfg.create_bucket, settle_s=cfg.repair_settle_s)
