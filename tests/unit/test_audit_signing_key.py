"""The checkpoint signing key: configured, generated when embedded, refused otherwise."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casebook.settings import Settings
from projections.audit.checkpoint import fingerprint
from projections.audit.signing import EMBEDDED_KEY_NAME, SigningKeyUnavailable, load_signing_key

EXTERNAL = "postgresql://casebook@db.example:5432/casebook"


def raw(key: Ed25519PrivateKey) -> str:
    return fingerprint(key.public_key())


def test_embedded_mode_generates_a_private_key_file_once(tmp_path: Path) -> None:
    settings = Settings(database_url=None, data_dir=tmp_path / "var")
    first = load_signing_key(settings)
    path = tmp_path / "var" / EMBEDDED_KEY_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert raw(load_signing_key(settings)) == raw(first)
    assert [p.name for p in path.parent.iterdir()] == [EMBEDDED_KEY_NAME]


def test_an_external_database_without_a_key_file_is_refused(tmp_path: Path) -> None:
    settings = Settings(database_url=EXTERNAL, data_dir=tmp_path)
    with pytest.raises(SigningKeyUnavailable, match="CASEBOOK_AUDIT_SIGNING_KEY_FILE"):
        load_signing_key(settings)
    assert not (tmp_path / EMBEDDED_KEY_NAME).exists()


def test_a_configured_key_file_is_used(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "audit.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings = Settings(database_url=EXTERNAL, audit_signing_key_file=path)
    assert raw(load_signing_key(settings)) == raw(key)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read signing key"),
        (b"not a key", "not an unencrypted PEM private key"),
        (
            generate_private_key(SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "must be Ed25519",
        ),
    ],
)
def test_an_unusable_key_file_is_named(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "audit.pem"
    if content is not None:
        path.write_bytes(content)
    settings = Settings(database_url=None, audit_signing_key_file=path)
    with pytest.raises(SigningKeyUnavailable, match=message) as raised:
        load_signing_key(settings)
    assert str(raised.value).startswith(str(path))
