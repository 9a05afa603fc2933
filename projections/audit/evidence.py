"""Export an evidence bundle of a case or an organisation over a period (format: bundle.py).

A case's bundle holds its case and SLA chains; an organisation's, its own chain and the
case and SLA chains of its cases. Of each chain it holds the entries that happened
(occurred_at) in [since, until) and every entry between them, so each segment is
contiguous and links to the entry before it (its start link). Entries the newest
checkpoint does not cover yet are listed as uncovered rather than signed on the spot:
exporting needs no signing key (`casebook audit checkpoint` signs one first if wanted).
All of it is read in one REPEATABLE READ snapshot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.errors import DomainError
from projections.audit import checkpointer
from projections.audit.bundle import ENTRIES, FORMAT, entry_line, write_zip
from projections.audit.chain import GENESIS
from projections.audit.checkpoint import Checkpoint
from projections.audit.merkle import MerkleTree
from projections.audit.projection import ENTRY_COLUMNS

_CASE_SCOPE = "subject = %(case)s AND stream IN ('case', 'sla')"
_ORGANISATION_SCOPE = (
    "((stream = 'organisation' AND subject = %(organisation)s) OR (stream IN ('case', 'sla') "
    "AND subject IN (SELECT case_id FROM casebook_audit_entries "
    "WHERE stream = 'case' AND organisation_id = %(organisation)s)))"
)


class EvidenceUnavailable(DomainError):
    """The audit log no longer matches a signed checkpoint that covers the entries asked for."""

    rule = "audit-log-matches-checkpoints"


class EvidenceRequestInvalid(DomainError):
    """A bundle's period must be ordered and carry UTC offsets."""

    rule = "evidence-period-is-valid"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EvidenceRequest:
    """What an auditor asked for: one case or one organisation, over [since, until)."""

    case_id: str | None = None
    organisation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        def instant(at: datetime | None) -> str | None:
            return at.astimezone(UTC).isoformat(timespec="microseconds") if at else None

        return {
            "case_id": self.case_id,
            "organisation_id": self.organisation_id,
            "since": instant(self.since),
            "until": instant(self.until),
        }


@dataclass(frozen=True)
class Export:
    """A bundle's bytes and what it holds."""

    data: bytes
    entries: int
    chains: int
    checkpoints: int
    uncovered: int


def export_bundle(
    conn: psycopg.Connection[Any], request: EvidenceRequest, *, now: datetime
) -> Export:
    """The bundle for `request`, read from one snapshot of the log."""
    if (request.case_id is None) == (request.organisation_id is None):
        raise ValueError("an evidence bundle is of one case or one organisation")
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        entries = _entries(conn, request)
        starts = _starts(conn, entries)
        ids = [int(e["entry_id"]) for e in entries]
        covering = checkpointer.covering(conn, ids)
        newest = checkpointer.latest(conn)
        proofs = _proofs(conn, covering, set(ids))
        included = {c.number: c for c in [*covering, *([newest] if newest else [])]}
        keys = checkpointer.public_keys(conn, {c.key_fingerprint for c in included.values()})
    lines = b"".join(entry_line(e) + b"\n" for e in entries)
    chains = _segments(entries, starts)
    uncovered = [i for i in ids if i not in proofs]
    manifest = {
        "format": FORMAT,
        "request": request.as_json(),
        "exported_at": now.astimezone(UTC).isoformat(timespec="microseconds"),
        "entries": {
            "file": ENTRIES,
            "sha256": hashlib.sha256(lines).hexdigest(),
            "count": len(entries),
        },
        "chains": chains,
        "proofs": [proofs[i] for i in ids if i in proofs],
        "covered_upto": newest.upto if newest else 0,
        "uncovered": uncovered,
        "uncovered_means": "appended after the newest checkpoint: links checked, not yet signed",
        "checkpoints": [c.as_json() for _, c in sorted(included.items())],
        "public_keys": [{"fingerprint": f, "pem": pem} for f, pem in sorted(keys.items())],
    }
    return Export(
        write_zip(lines, manifest), len(entries), len(chains), len(included), len(uncovered)
    )


def _entries(conn: psycopg.Connection[Any], request: EvidenceRequest) -> list[dict[str, Any]]:
    scope = _CASE_SCOPE if request.case_id is not None else _ORGANISATION_SCOPE
    query = (
        "WITH chains AS (SELECT stream, subject, min(seq) AS first_seq, max(seq) AS last_seq "
        f"FROM casebook_audit_entries WHERE {scope} "
        "AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s) "
        "AND (%(until)s::timestamptz IS NULL OR occurred_at < %(until)s) "
        "GROUP BY stream, subject) "
        f"SELECT e.entry_id, {', '.join(f'e.{c.strip()}' for c in ENTRY_COLUMNS.split(','))} "
        "FROM casebook_audit_entries e JOIN chains c USING (stream, subject) "
        "WHERE e.seq BETWEEN c.first_seq AND c.last_seq "
        "ORDER BY e.stream, e.subject, e.seq, e.entry_id"
    )
    params = {
        "case": request.case_id,
        "organisation": request.organisation_id,
        "since": request.since,
        "until": request.until,
    }
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, params).fetchall()


def _starts(
    conn: psycopg.Connection[Any], entries: list[dict[str, Any]]
) -> dict[tuple[str, str], str]:
    """The hash each segment's first entry links to (the entry before the period)."""
    firsts: dict[tuple[str, str], int] = {}
    for entry in entries:
        firsts.setdefault((entry["stream"], str(entry["subject"])), int(entry["seq"]))
    wanted = [(s, subject, seq - 1) for (s, subject), seq in sorted(firsts.items()) if seq > 1]
    if not wanted:
        return {}
    streams, subjects, seqs = (list(column) for column in zip(*wanted, strict=True))
    rows = conn.execute(
        "SELECT DISTINCT ON (e.stream, e.subject) e.stream, e.subject, e.hash "
        "FROM casebook_audit_entries e "
        "JOIN unnest(%s::text[], %s::uuid[], %s::int[]) AS k(stream, subject, seq) "
        "USING (stream, subject, seq) ORDER BY e.stream, e.subject, e.entry_id",
        (streams, subjects, seqs),
    ).fetchall()
    return {(stream, str(subject)): hash_ for stream, subject, hash_ in rows}


def _segments(
    entries: list[dict[str, Any]], starts: dict[tuple[str, str], str]
) -> list[dict[str, Any]]:
    segments: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        key = (entry["stream"], str(entry["subject"]))
        seq = int(entry["seq"])
        if key not in segments:
            start_hash = GENESIS if seq == 1 else starts.get(key, "")
            segments[key] = {
                "stream": key[0],
                "subject": key[1],
                "start": {"seq": seq - 1, "hash": start_hash},
                "first_seq": seq,
                "last_seq": seq,
                "count": 0,
            }
        segments[key]["last_seq"] = seq
        segments[key]["count"] += 1
    return list(segments.values())


def _proofs(
    conn: psycopg.Connection[Any], covering: list[Checkpoint], wanted: set[int]
) -> dict[int, dict[str, Any]]:
    """Per wanted entry id, its checkpoint, leaf index and audit path."""
    proofs = {}
    for checkpoint in covering:
        covered = checkpointer.covered_hashes(conn, checkpoint)
        tree = MerkleTree.of_entries([hash_ for _, hash_ in covered])
        if len(covered) != checkpoint.count or tree.root.hex() != checkpoint.merkle_root:
            raise EvidenceUnavailable(
                f"the audit log no longer matches signed checkpoint {checkpoint.number} "
                f"(entry ids {checkpoint.after + 1}-{checkpoint.upto}): entries were changed, "
                "removed or added after it was signed; run `casebook audit verify`"
            )
        for index, (entry_id, _) in enumerate(covered):
            if entry_id in wanted:
                proofs[entry_id] = {
                    "entry_id": entry_id,
                    "checkpoint": checkpoint.number,
                    "index": index,
                    "path": [step.hex() for step in tree.proof(index)],
                }
    return proofs
