"""Password hashing (argon2id) and generation; no default password exists anywhere."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password of about 128 bits, printed once to the person who set the hub up."""
    return secrets.token_urlsafe(16)


def check_strength(password: str) -> str | None:
    """Why ``password`` is refused, or None if acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Passwords need at least {MIN_LENGTH} characters."
    return None
