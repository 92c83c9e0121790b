"""Settings precedence and validation; credential encryption."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from civicam.config.settings import get_settings
from civicam.registry.secrets import SecretBox, load_or_create_key


def test_defaults_are_embedded_and_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIVICAM_DATABASE_URL", raising=False)
    s = get_settings(data_dir=tmp_path)
    assert s.host == "127.0.0.1"
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'civicam.db'}"
    assert (s.policy.min_width, s.policy.min_height, s.policy.min_fps, s.policy.max_fps) == (1280, 720, 15, 25)


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "civicam.toml"
    cfg.write_text('port = 9000\nprobe_seconds = 3.0\n[policy]\nmin_fps = 10\n')
    monkeypatch.setenv("CIVICAM_PORT", "9100")
    s = get_settings(config_file=cfg, data_dir=tmp_path)
    assert s.port == 9100
    assert s.probe_seconds == 3.0
    assert s.policy.min_fps == 10


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "civicam.toml"
    cfg.write_text("prot = 9000\n")
    with pytest.raises(ValidationError, match="prot"):
        get_settings(config_file=cfg, data_dir=tmp_path)


def test_secret_box_round_trip_and_key_file_mode(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key = load_or_create_key(key_file, None)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(key_file, None) == key
    box = SecretBox(key)
    sealed = box.seal("hunter2")
    assert sealed is not None and b"hunter2" not in sealed
    assert box.open(sealed) == "hunter2"
    assert "hunter2" not in repr(box) and key.decode() not in repr(box)
    other = SecretBox(load_or_create_key(tmp_path / "other.key", None))
    with pytest.raises(ValueError, match="cannot be decrypted"):
        other.open(sealed)
