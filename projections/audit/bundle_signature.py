"""The signature of an evidence bundle's manifest: what is signed, how, and its check.

Pure. `signature.json`, the bundle's last member, holds the SHA-256 of manifest.json's
bytes, the signing key's fingerprint and an Ed25519 signature over the canonical JSON of
those (with this format's name, so no other signed text of ours can pass for it). The
manifest holds the SHA-256 of entries.jsonl and names the signing key, so one signature
vouches for every byte of the bundle. A digest is signed rather than the manifest itself
because the manifest is written as it streams and never held whole.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from projections.audit.checkpoint import fingerprint

FORMAT = "casebook-evidence-signature/1"
SIGNATURE = "signature.json"


def statement(manifest_sha256: str, key_fingerprint: str) -> bytes:
    """The signed bytes."""
    body = {
        "format": FORMAT,
        "key_fingerprint": key_fingerprint,
        "manifest_sha256": manifest_sha256,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def signature_json(manifest_sha256: str, key: Ed25519PrivateKey) -> bytes:
    """signature.json for a manifest whose bytes have `manifest_sha256`."""
    signer = fingerprint(key.public_key())
    signed = statement(manifest_sha256, signer)
    document = json.loads(signed) | {"signature": base64.b64encode(key.sign(signed)).decode()}
    return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"


def parse(data: bytes) -> dict[str, Any]:
    """signature.json's fields; ValueError naming what is wrong."""
    try:
        document = json.loads(data)
    except ValueError as error:
        raise ValueError(f"{SIGNATURE} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{SIGNATURE}: unknown format (expected {FORMAT})")
    fields = ("key_fingerprint", "manifest_sha256", "signature")
    if not all(isinstance(document.get(name), str) for name in fields):
        raise ValueError(f"{SIGNATURE} lacks {', '.join(fields)}")
    return document


def problem(
    document: dict[str, Any], manifest_sha256: str, keys: dict[str, Ed25519PublicKey], named: Any
) -> str | None:
    """Why `document` does not sign a manifest of `manifest_sha256` with one of `keys`, the
    one the manifest `named`, or None when it does."""
    signer = str(document["key_fingerprint"])
    if document["manifest_sha256"] != manifest_sha256:
        return (
            f"manifest.json has SHA-256 {manifest_sha256[:16]}..., the signed one had "
            f"{str(document['manifest_sha256'])[:16]}...: the manifest was changed"
        )
    key = keys.get(signer)
    if key is None:
        return f"{SIGNATURE}: the bundle has no public key {signer[:16]}..."
    try:
        key.verify(
            base64.b64decode(document["signature"], validate=True),
            statement(manifest_sha256, signer),
        )
    except (InvalidSignature, ValueError):
        return "the manifest's signature does not verify"
    if named != signer:
        return f"manifest.json names signing key {str(named)[:16]}..., {SIGNATURE} {signer[:16]}..."
    return None
