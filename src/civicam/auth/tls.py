"""The hub's TLS certificate: generated once by ``civicam init`` unless the operator brings one, and its
fingerprint, which a site gateway pins at enrolment."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from civicam.config.settings import Settings


def fingerprint_der(der: bytes) -> str:
    """SHA-256 of a DER certificate, lowercase hex (the form gateways pin)."""
    return hashlib.sha256(der).hexdigest()


def fingerprint_pem_file(path: Path) -> str:
    """The pinned fingerprint of the first certificate in a PEM file."""
    return fingerprint_der(ssl.PEM_cert_to_DER_cert(path.read_text(encoding="ascii")))


def normalise_fingerprint(value: str) -> str:
    """Accepts ``AB:CD:...`` or plain hex; a value that is not a SHA-256 is a clear error."""
    clean = value.strip().replace(":", "").lower()
    if len(clean) != 64 or any(c not in "0123456789abcdef" for c in clean):
        raise ValueError("a certificate fingerprint is 64 hex digits (SHA-256), colons optional")
    return clean


def generate_self_signed(cert_path: Path, key_path: Path, hostnames: tuple[str, ...] = ("localhost",),
                         addresses: tuple[str, ...] = ("127.0.0.1",), days: int = 3650) -> str:
    """Write a new P-256 key (mode 0600) and a self-signed certificate; returns the certificate's fingerprint.

    Gateways pin the fingerprint, so the names in it are informational; they are there for browsers.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "civicam hub")])
    now = dt.datetime.now(dt.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    san += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


def default_tls_files(settings: Settings) -> tuple[Path, Path]:
    """Where ``civicam init`` puts the certificate and key it generates."""
    return settings.data_dir / "tls" / "hub.crt", settings.data_dir / "tls" / "hub.key"


def tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key the hub serves: the operator's (``tls_cert``/``tls_key``), else the generated pair."""
    if settings.tls_cert is not None and settings.tls_key is not None:
        return settings.tls_cert, settings.tls_key
    cert, key = default_tls_files(settings)
    return (cert, key) if cert.is_file() and key.is_file() else None


def ensure_certificate(settings: Settings) -> str | None:
    """Generate the hub's certificate unless the operator gave one or it exists; returns a new fingerprint."""
    if settings.tls_cert is not None or tls_files(settings) is not None:
        return None
    cert, key = default_tls_files(settings)
    return generate_self_signed(cert, key)


def hub_fingerprint(settings: Settings) -> str | None:
    """The fingerprint gateways pin: of the certificate the hub serves, if it has one."""
    files = tls_files(settings)
    return fingerprint_pem_file(files[0]) if files else None
