"""Hash chains over audit entries: canonical encoding, links, and finding the first break.

Pure. An entry's hash is SHA-256 over the previous entry's hash and the entry's
canonical encoding (JSON, keys sorted, no insignificant whitespace, UTF-8, instants in
UTC with microseconds), so changing, removing, inserting or reordering any entry breaks
every link after it; the first broken link names where the log was tampered with.
An entry's origin fields are encoded only when present: entries without them (written
before origins were recorded, or of commands from the command line) keep the encoding,
and so the hashes, they always had.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# What the hash covers: everything an auditor reads in an entry, except the hash itself.
HASHED_FIELDS = (
    "stream",
    "subject",
    "seq",
    "event_id",
    "event_type",
    "case_id",
    "organisation_id",
    "occurred_at",
    "recorded_at",
    "actor_id",
    "actor_role",
    "channel",
    "outcome",
    "changes",
    "prev_hash",
)
# Where a command came from (API key, client address, request id): hashed when not None.
ORIGIN_FIELDS = ("api_key_id", "client_address", "request_id")


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers."""
    body = {name: plain(entry.get(name)) for name in HASHED_FIELDS}
    for name in ORIGIN_FIELDS:
        value = entry.get(name)
        if value is not None:
            body[name] = plain(value)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical encoding, which includes `prev_hash`."""
    return hashlib.sha256(canonical(entry)).hexdigest()


_AS_IS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """A value as the canonical encoding writes it (instants in UTC, UUIDs as text)."""
    if type(value) in _AS_IS:  # most values: a shortcut, same result as below
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # UUIDs


@dataclass(frozen=True)
class Break:
    """The first entry of a chain that does not link: where, and why."""

    stream: str
    subject: str
    seq: int | None
    entry_id: int | None
    reason: str
    kind: str = "entry"  # what the chain links: audit entries, or access records ("record")

    def describe(self) -> str:
        where = f"{self.kind} {self.seq}" if self.seq is not None else "the chain's head"
        ident = f" ({self.kind} id {self.entry_id})" if self.entry_id is not None else ""
        return f"{self.stream} {self.subject}: {where}{ident}: {self.reason}"


def first_break(
    stream: str,
    subject: str,
    entries: Iterable[Mapping[str, Any]],
    *,
    head: tuple[int, str] | None = None,
    start: tuple[int, str] = (0, GENESIS),
    kind: str = "entry",
    hash_of: Callable[[Mapping[str, Any]], str] = entry_hash,
    id_name: str = "entry_id",
) -> Break | None:
    """The first link that fails in one chain (entries in log order), or None.

    `start` is the (seq, hash) the first entry follows: the genesis for a whole chain, or
    the entry before a period an evidence bundle covers. `head` is the (seq, hash) the
    projection recorded as the chain's head, if known: entries removed from the end are
    found through it. `kind`, `hash_of` and `id_name` serve other chains of the same shape
    (the access log's records).
    """
    expected_seq, previous = start[0] + 1, start[1]
    for entry in entries:
        seq = int(entry["seq"])
        reason = None
        if seq < expected_seq:
            reason = f"{kind} {seq} appears again or out of order"
        elif seq > expected_seq:
            missing = expected_seq if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            reason = f"{kind} {missing} is missing before it"
        elif entry["prev_hash"] != previous:
            reason = f"it does not link to the {kind} before it"
        elif hash_of(entry) != entry["hash"]:
            reason = "its content does not match its hash"
        if reason is not None:
            return Break(stream, subject, seq, entry.get(id_name), reason, kind)
        previous, expected_seq = entry["hash"], seq + 1
    if head is not None and (expected_seq - 1, previous) != head:
        last = expected_seq - 1
        reason = f"the chain ends at {kind} {last} but its recorded head is {kind} {head[0]}"
        if last == head[0]:
            reason = f"{kind} {last} is not the recorded head (its hash differs)"
        return Break(stream, subject, None, None, reason, kind)
    return None
