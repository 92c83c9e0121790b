"""Storage settings: the backend is chosen by name, credentials come in pairs, unknown keys are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from civicam.config.settings import get_settings
from civicam.config.storage import StorageSettings
from civicam.storage.backend import LocalDiskStore
from civicam.storage.factory import open_store


@pytest.mark.parametrize(("values", "ok"), [
    ({}, True),
    ({"backend": "s3", "endpoint_url": "http://127.0.0.1:8333"}, True),
    ({"backend": "s3", "access_key_id": "k", "secret_access_key": "s"}, True),
    ({"backend": "s3", "access_key_id": "k"}, False),  # half a credential pair
    ({"backend": "s3", "secret_access_key": "s"}, False),
    ({"backend": "ftp"}, False),
    ({"bucket": "ab"}, False),  # S3 bucket names have 3-63 characters
    ({"prefix": "north"}, False),  # a prefix ends with "/"
    ({"prefix": "north/cams/"}, True),
    ({"multipart_threshold_bytes": 1024}, False),  # S3's smallest part is 5 MiB
    ({"bukcet": "civicam"}, False),  # a typo is an error, not a silent default
])
def test_storage_settings(values: dict[str, object], ok: bool) -> None:
    if ok:
        StorageSettings.model_validate(values)
    else:
        with pytest.raises(ValidationError):
            StorageSettings.model_validate(values)


def test_secret_is_not_shown() -> None:
    cfg = StorageSettings.model_validate({"access_key_id": "k", "secret_access_key": "very-secret"})
    assert "very-secret" not in repr(cfg) and "very-secret" not in str(cfg.model_dump())


def test_environment_selects_s3_and_the_default_stays_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = get_settings(data_dir=tmp_path)
    assert local.storage.backend == "local"
    assert isinstance(open_store(local), LocalDiskStore)
    monkeypatch.setenv("CIVICAM_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("CIVICAM_STORAGE__SECRET_ACCESS_KEY", "from-env")
    monkeypatch.setenv("CIVICAM_STORAGE__ACCESS_KEY_ID", "id")
    s3 = get_settings(data_dir=tmp_path)
    assert s3.storage.backend == "s3" and s3.storage.secret_access_key is not None
    assert s3.storage.secret_access_key.get_secret_value() == "from-env"
