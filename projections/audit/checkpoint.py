"""Signed checkpoints of the audit log: what is signed, how, and how it is checked.

Pure. A checkpoint covers the entries with entry_id in (after, upto], in entry_id order:
their Merkle root, their count, and the digest of the checkpoint before it, so the
checkpoints form a chain of their own and none can be dropped or replaced unnoticed.
From format 2 it also signs the access log's head (`access_seq`, `access_hash`), so
access records cannot be cut from its end unnoticed; a format-2 checkpoint may cover no
new entry (count 0) when only the access log moved. Format-1 checkpoints have no access
fields and keep their signed bytes, so they still verify.
The signed bytes are the canonical JSON of the fields below (keys sorted, no spaces,
UTF-8); the digest is SHA-256 of those bytes and the signature Ed25519 over them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "casebook-audit-checkpoint/2"
FORMAT_1 = "casebook-audit-checkpoint/1"  # before the access log was signed
EVENT_TYPE = "casebook.audit.checkpoint_signed.v1"


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint; `digest` and `signature` are over `signed_bytes()`."""

    number: int
    after: int  # the previous checkpoint's upto (0 for the first)
    upto: int
    count: int
    merkle_root: str
    prev_digest: str  # GENESIS for the first
    created_at: str  # UTC, ISO 8601 with microseconds
    key_fingerprint: str
    digest: str = ""
    signature: str = ""  # base64
    access_seq: int | None = None  # format 2: the access log's head, its seq and hash
    access_hash: str | None = None

    @property
    def format(self) -> str:
        return FORMAT_1 if self.access_seq is None else FORMAT

    def body(self) -> dict[str, Any]:
        """The signed fields."""
        fields = asdict(self)
        del fields["digest"], fields["signature"]
        if self.access_seq is None:
            del fields["access_seq"], fields["access_hash"]
        return {"format": self.format, **fields}

    def signed_bytes(self) -> bytes:
        return json.dumps(self.body(), sort_keys=True, separators=(",", ":")).encode()

    def as_json(self) -> dict[str, Any]:
        return {**self.body(), "digest": self.digest, "signature": self.signature}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        if data.get("format") not in (FORMAT_1, FORMAT):
            raise ValueError(f"unknown checkpoint format {data.get('format')!r}")
        names = set(cls.__dataclass_fields__.keys())
        if data["format"] == FORMAT_1:
            names -= {"access_seq", "access_hash"}
        missing = sorted(names - data.keys())
        if missing:
            raise ValueError(f"checkpoint lacks {', '.join(missing)}")
        return cls(**{name: data[name] for name in names})


def sign(
    key: Ed25519PrivateKey,
    *,
    number: int,
    after: int,
    upto: int,
    count: int,
    merkle_root: bytes,
    prev_digest: str,
    created_at: datetime,
    access_head: tuple[int, str],
) -> Checkpoint:
    """A new checkpoint (format 2), digested and signed with `key`."""
    unsigned = Checkpoint(
        number=number,
        after=after,
        upto=upto,
        count=count,
        merkle_root=merkle_root.hex(),
        prev_digest=prev_digest,
        created_at=created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        key_fingerprint=fingerprint(key.public_key()),
        access_seq=access_head[0],
        access_hash=access_head[1],
    )
    signed = unsigned.signed_bytes()
    return Checkpoint(
        **{
            **asdict(unsigned),
            "digest": hashlib.sha256(signed).hexdigest(),
            "signature": base64.b64encode(key.sign(signed)).decode(),
        }
    )


def problem(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> str | None:
    """Why `checkpoint` is not authentic under `public_key`, or None when it is."""
    if checkpoint.key_fingerprint != fingerprint(public_key):
        return f"it names key {checkpoint.key_fingerprint[:16]}..., not the key given"
    signed = checkpoint.signed_bytes()
    if hashlib.sha256(signed).hexdigest() != checkpoint.digest:
        return "its digest does not match its fields"
    try:
        public_key.verify(base64.b64decode(checkpoint.signature, validate=True), signed)
    except (InvalidSignature, ValueError):
        return "its signature does not verify"
    return None


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_pem(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (a private key's PEM gives its public half)."""
    try:
        key: Any = serialization.load_pem_public_key(pem)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError):
            raise ValueError("not a PEM Ed25519 key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 key")
    return key
