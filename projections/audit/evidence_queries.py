"""What an evidence bundle reads from the audit log: its entries, and each segment's start.

The request's type is `evidence.EvidenceRequest`; these take its fields as they are.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from projections.audit.evidence import EvidenceRequest

_CASE_SCOPE = "subject = %(case)s AND stream IN ('case', 'sla')"
_ORGANISATION_SCOPE = (
    "((stream = 'organisation' AND subject = %(organisation)s) OR (stream IN ('case', 'sla') "
    "AND subject IN (SELECT case_id FROM casebook_audit_entries "
    "WHERE stream = 'case' AND organisation_id = %(organisation)s)))"
)


def entries_query(request: EvidenceRequest, columns: str) -> tuple[str, dict[str, Any]]:
    """The entries of the bundle (`columns` of them), in chain order."""
    scope = _CASE_SCOPE if request.case_id is not None else _ORGANISATION_SCOPE
    query = (
        "WITH chains AS (SELECT stream, subject, min(seq) AS first_seq, max(seq) AS last_seq "
        f"FROM casebook_audit_entries WHERE {scope} "
        "AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s) "
        "AND (%(until)s::timestamptz IS NULL OR occurred_at < %(until)s) "
        "GROUP BY stream, subject) "
        f"SELECT {columns} "
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
    return query, params


def entry_ids(conn: psycopg.Connection[Any], request: EvidenceRequest) -> array[int]:
    query, params = entries_query(request, "e.entry_id")
    ids = array("q")
    with conn.cursor() as cursor:
        for (entry_id,) in cursor.execute(query, params):
            ids.append(entry_id)
    return ids


def starts(
    conn: psycopg.Connection[Any], segments: dict[tuple[str, str], list[int]]
) -> dict[tuple[str, str], str]:
    """The hash each segment's first entry links to (the entry before the period)."""
    wanted = [
        (s, subject, seg[0] - 1) for (s, subject), seg in sorted(segments.items()) if seg[0] > 1
    ]
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
