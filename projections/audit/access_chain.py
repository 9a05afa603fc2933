"""The access log's hash chain: canonical encoding of an access record, its hash, its links.

Pure. Every access record joins one chain, in `seq` order (1, 2, ... without gaps): its
`hash` is SHA-256 over its canonical encoding, which includes `seq` and `prev_hash`, the
hash of the record before it (the genesis, 64 zeros, for the first). So a record changed,
removed, inserted or moved breaks every link after it. The encoding is the audit entries'
(JSON, keys sorted, no spaces, UTF-8 as is, instants in UTC with microseconds) over every
column but `access_id` (the table's own numbering, which may skip) and `hash`; migration
0025_access_chain writes the same text in SQL to chain the records written before it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from projections.audit.chain import GENESIS, Break, first_break, plain

HASHED_FIELDS = (
    "seq",
    "at",
    "principal_id",
    "role",
    "route",
    "method",
    "path",
    "case_id",
    "organisation_id",
    "reason",
    "request_id",
    "client_address",
    "on_behalf_of",
    "prev_hash",
)
STREAM, SUBJECT, KIND = "access", "log", "record"  # how a break is named: "access log: record 3"


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes an access record's hash covers."""
    body = {name: plain(record.get(name)) for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical encoding, which includes `seq` and `prev_hash`."""
    return hashlib.sha256(canonical(record)).hexdigest()


def first_access_break(
    records: Iterable[Mapping[str, Any]], *, head: tuple[int, str] | None
) -> Break | None:
    """The first link of the access chain that fails (records in `seq` order), or None;
    records cut from the end are found through the recorded `head`."""
    return first_break(
        STREAM,
        SUBJECT,
        records,
        head=head,
        start=(0, GENESIS),
        kind=KIND,
        hash_of=record_hash,
        id_name="access_id",
    )


def signed_head_break(number: int, seq: int, signed: str, found: str | None) -> Break | None:
    """Why the access chain does not hold the head checkpoint `number` signed, or None."""
    if found == signed:
        return None
    why = "is missing" if found is None else "does not match the signed hash"
    reason = f"signed by checkpoint {number} as the access log's head, {KIND} {seq} {why}"
    return Break(STREAM, SUBJECT, seq, None, reason, KIND)
