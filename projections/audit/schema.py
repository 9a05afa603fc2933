"""The audit-checkpoints topic as the audit trail publishes it: payload schema, headers."""

from __future__ import annotations

from typing import Any

from contract.schema_parts import DECIMAL, DRAFT, GAP_RULE, SCHEMA_BASE, text
from projections.audit.checkpoint import EVENT_TYPE as CHECKPOINT_TYPE
from projections.audit.checkpoint import FORMAT as CHECKPOINT_FORMAT
from projections.audit.checkpoint import FORMAT_1 as CHECKPOINT_FORMAT_1
from projections.sla.schema import sla_headers

CHECKPOINT_TOPIC = "casebook.audit-checkpoints.v1"


def checkpoint_json_schema() -> dict[str, Any]:
    """JSON Schema of a signed audit checkpoint (projections/audit/checkpoint.py)."""
    hex64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    count = {"type": "integer", "minimum": 0}
    properties: dict[str, Any] = {
        "format": {
            "enum": [CHECKPOINT_FORMAT_1, CHECKPOINT_FORMAT],
            "description": "Version of the signed encoding: 2 adds access_seq and "
            "access_hash (1: checkpoints signed before the access log was).",
        },
        "number": count | {"minimum": 1, "description": "1, 2, ... with no gaps."},
        "after": count | {"description": "The previous checkpoint's upto (0 for the first)."},
        "upto": count
        | {"description": "The last audit entry id covered (= after when count is 0)."},
        "count": count
        | {
            "description": "Entries with id in (after, upto]; 0 (format 2) when only the "
            "access log moved."
        },
        "merkle_root": hex64
        | {"description": "RFC 6962 Merkle root of those entries' hashes in entry id order."},
        "prev_digest": hex64 | {"description": "The previous checkpoint's digest (zeros first)."},
        "created_at": {"type": "string", "format": "date-time", "description": "When signed."},
        "key_fingerprint": hex64 | {"description": "SHA-256 of the raw Ed25519 public key."},
        "digest": hex64 | {"description": "SHA-256 of the signed bytes."},
        "signature": {
            "type": "string",
            "contentEncoding": "base64",
            "description": "Ed25519 over the signed bytes: the canonical JSON (keys sorted, "
            "no spaces) of every field but digest, signature and public_key.",
        },
        "public_key": {"type": "string", "description": "The signing key's public half, PEM."},
        "access_seq": count
        | {"description": "Format 2: the access log's head when signed, its record's seq."},
        "access_hash": hex64
        | {"description": "Format 2: that record's hash (zeros before the first record)."},
    }
    optional = {"access_seq", "access_hash"}
    return {
        "$schema": DRAFT,
        "$id": f"{SCHEMA_BASE}events/{CHECKPOINT_TYPE}.json",
        "title": CHECKPOINT_TYPE,
        "description": "A signed checkpoint of the audit log: the entries appended since "
        "the previous checkpoint, by their Merkle root, chained to that checkpoint.",
        "type": "object",
        "additionalProperties": False,
        "required": sorted(properties.keys() - optional),
        "properties": properties,
    }


def checkpoint_message() -> dict[str, Any]:
    headers = sla_headers()
    headers["description"] = "CloudEvents 1.0 Kafka binary-mode headers of a checkpoint."
    headers["properties"] |= {
        "ce_id": text(
            "checkpoint:<number>:<first 16 hex digits of its digest>: stable, deduplicate on it.",
            minLength=1,
        ),
        "ce_type": text("The checkpoint type.", const=CHECKPOINT_TYPE),
        "ce_time": text("When the checkpoint was signed, RFC 3339.", format="date-time"),
        "ce_subject": text("Always `audit-log`, as in the message key.", const="audit-log"),
        "ce_sequence": text(
            "The checkpoint's number on this topic, contiguous from 1 per key (1, 2, ...; it "
            "goes on across a rebuilt log's new series of checkpoints), a decimal integer as "
            "a string. " + GAP_RULE,
            pattern=DECIMAL,
        ),
        "ce_position": text("The checkpoint's outbox position.", pattern=DECIMAL),
    }
    return {
        "name": CHECKPOINT_TYPE,
        "title": "Checkpoint signed",
        "summary": checkpoint_json_schema()["description"],
        "contentType": "application/json",
        "headers": headers,
        "payload": {"$ref": f"events/{CHECKPOINT_TYPE}.json"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "const": "audit-log",
                    "description": "One key: every checkpoint on one partition, in order.",
                },
                "bindingVersion": "0.5.0",
            }
        },
    }
