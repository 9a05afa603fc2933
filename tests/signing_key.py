"""An audit signing key for tests that run the API or the audit trail as deployed."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def new_signing_key_file(directory: Path) -> Path:
    """A fresh Ed25519 private key (PEM) in `directory`, as CASEBOOK_AUDIT_SIGNING_KEY_FILE."""
    path = directory / "audit-key.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path
