"""The Ed25519 key that signs audit checkpoints: configured, or generated when embedded.

An external database is production: its key is managed by operators and named by
CASEBOOK_AUDIT_SIGNING_KEY_FILE, and the checkpointer refuses to start without one
(a key invented on some replica would sign checkpoints nobody can check). The embedded
database belongs to this machine, so its key is generated beside it on first use.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casebook.settings import Settings
from privacy.key_files import create_key_file

EMBEDDED_KEY_NAME = "audit-signing-key.pem"


class SigningKeyUnavailable(RuntimeError):
    """No usable checkpoint signing key: missing, unreadable or not Ed25519."""


def signing_key_path(settings: Settings) -> Path:
    """Where the key is read from (or, when embedded, generated)."""
    if settings.audit_signing_key_file is not None:
        return settings.audit_signing_key_file
    if not settings.uses_embedded_database:
        raise SigningKeyUnavailable(
            "audit checkpoints need a signing key with an external database: set "
            "CASEBOOK_AUDIT_SIGNING_KEY_FILE to an Ed25519 private key (PEM), e.g. from "
            "`openssl genpkey -algorithm ed25519 -out audit-key.pem`"
        )
    return settings.data_dir / EMBEDDED_KEY_NAME


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The configured key; in embedded mode without one, the data dir's (made if absent)."""
    path = signing_key_path(settings)
    if settings.audit_signing_key_file is None and not path.exists():
        _generate(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise SigningKeyUnavailable(f"{path}: cannot read signing key ({error.strerror})") from None
    except (ValueError, TypeError):
        raise SigningKeyUnavailable(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyUnavailable(f"{path}: the signing key must be Ed25519")
    return key


def _generate(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    create_key_file(path, pem)
