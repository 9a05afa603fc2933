"""Checkpoints of both formats verify; a format-2 checkpoint signs the access log's head."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projections.audit.checkpoint import FORMAT, FORMAT_1, Checkpoint, fingerprint, problem, sign

KEY = Ed25519PrivateKey.generate()
AT = datetime(2025, 3, 4, 12, tzinfo=UTC)


def format_1_checkpoint() -> Checkpoint:
    """A checkpoint as signed before access heads were: no access fields at all."""
    unsigned = Checkpoint(
        number=1,
        after=0,
        upto=4,
        count=4,
        merkle_root="ab" * 32,
        prev_digest="0" * 64,
        created_at=AT.isoformat(timespec="microseconds"),
        key_fingerprint=fingerprint(KEY.public_key()),
    )
    signed = unsigned.signed_bytes()
    return replace(
        unsigned,
        digest=hashlib.sha256(signed).hexdigest(),
        signature=base64.b64encode(KEY.sign(signed)).decode(),
    )


def test_a_format_1_checkpoint_keeps_its_signed_bytes_and_verifies() -> None:
    old = format_1_checkpoint()
    published = old.as_json()
    assert published["format"] == FORMAT_1 and "access_seq" not in published
    assert b"access" not in old.signed_bytes()
    again = Checkpoint.from_json(published)
    assert again == old and problem(again, KEY.public_key()) is None


def test_a_format_2_checkpoint_signs_the_access_head() -> None:
    new = sign(
        KEY,
        number=2,
        after=4,
        upto=4,
        count=0,
        merkle_root=hashlib.sha256(b"").digest(),
        prev_digest=format_1_checkpoint().digest,
        created_at=AT,
        access_head=(9, "cd" * 32),
    )
    assert new.format == FORMAT and (new.access_seq, new.access_hash) == (9, "cd" * 32)
    assert Checkpoint.from_json(new.as_json()) == new
    assert problem(new, KEY.public_key()) is None
    for forged in (replace(new, access_seq=8), replace(new, access_hash="ef" * 32)):
        assert problem(forged, KEY.public_key()) == "its digest does not match its fields"
    dropped = {k: v for k, v in new.as_json().items() if not k.startswith("access_")}
    with pytest.raises(ValueError, match="lacks access_hash, access_seq"):
        Checkpoint.from_json(dropped)
