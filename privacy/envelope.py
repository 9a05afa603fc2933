"""Envelope encryption: data keys sealed by a master key, values sealed by data keys.

Pure. AES-256-GCM throughout. A data key is wrapped under the master key with the data
key's id as associated data, so a wrapped key moved to another id does not unwrap; a
value is sealed under its data key with the key id as associated data too. Destroying
the wrapped key (erasure) leaves every value sealed under it unreadable, wherever the
ciphertext is copied.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE = 12
_WRAP_CONTEXT = b"casebook-data-key:"


class KeyUnusable(ValueError):
    """A key or sealed value that does not decrypt: the wrong master key, or tampering."""


@dataclass(frozen=True)
class Sealed:
    """One personal value, encrypted under data key `key_id`.

    `shape` says what the value was ("text" or "list"), so an erased value reads as
    the same shape (`ERASED` or an empty list) without revealing anything else.
    """

    key_id: UUID
    shape: str
    blob: bytes  # nonce || ciphertext || tag


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def fingerprint(master_key: bytes) -> str:
    """A name for a master key that does not reveal it (SHA-256 of a derived value)."""
    return hashlib.sha256(b"casebook-master-key-id:" + master_key).hexdigest()[:32]


def wrap(master_key: bytes, key_id: UUID, data_key: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(master_key).encrypt(nonce, data_key, _WRAP_CONTEXT + key_id.bytes)


def unwrap(master_key: bytes, key_id: UUID, wrapped: bytes) -> bytes:
    try:
        return AESGCM(master_key).decrypt(
            wrapped[:_NONCE], wrapped[_NONCE:], _WRAP_CONTEXT + key_id.bytes
        )
    except InvalidTag:
        raise KeyUnusable(f"data key {key_id} does not unwrap under this master key") from None


def seal(key_id: UUID, data_key: bytes, value: Any) -> Sealed:
    """`value` (text or a list of texts) sealed under the data key."""
    shape = "list" if isinstance(value, list | tuple) else "text"
    plain = json.dumps(list(value) if shape == "list" else value, ensure_ascii=False).encode()
    nonce = os.urandom(_NONCE)
    return Sealed(key_id, shape, nonce + AESGCM(data_key).encrypt(nonce, plain, key_id.bytes))


def open_sealed(sealed: Sealed, data_key: bytes) -> Any:
    try:
        plain = AESGCM(data_key).decrypt(
            sealed.blob[:_NONCE], sealed.blob[_NONCE:], sealed.key_id.bytes
        )
    except InvalidTag:
        raise KeyUnusable(f"a value sealed under data key {sealed.key_id} was altered") from None
    return json.loads(plain)
