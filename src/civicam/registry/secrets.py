"""Camera credentials encrypted at rest with a Fernet key kept in the data directory or the environment."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts and decrypts short secrets; the key never leaves this object."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def seal(self, value: str | None) -> bytes | None:
        return None if value is None else self._fernet.encrypt(value.encode())

    def open(self, token: bytes | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise ValueError("stored credentials cannot be decrypted: wrong or replaced secret key") from None

    def derived_key(self, purpose: str) -> bytes:
        """A key for ``purpose`` (e.g. signing grants) derived from the hub key, never the key itself."""
        import hashlib
        import hmac

        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    def __repr__(self) -> str:  # never show key material, not even by accident in a traceback
        return "SecretBox(<key hidden>)"


def load_or_create_key(key_file: Path, from_env: str | None) -> bytes:
    """The key given by the environment, else the one in ``key_file``, creating it (mode 0600) if absent."""
    if from_env:
        return from_env.encode()
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once must not write two different keys.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key
