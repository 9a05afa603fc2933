"""Verify the audit log in the database: one chain, one case, or the whole log.

Entries are read in (stream, subject, seq, entry_id) order, as an auditor would replay
them, and every chain is checked against its recorded head; each broken chain is
reported at its first bad entry. The whole log's verification also replays the access
log's chain against its recorded head and against the heads signed checkpoints vouch
for (`access_chain.py`). That proves the chains unmodified; whether they are complete is
a check against the store (`completeness.py`) a caller adds to the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections.audit import checkpointer
from projections.audit.access_chain import (
    HASHED_FIELDS,
    KIND,
    STREAM,
    SUBJECT,
    first_access_break,
    signed_head_break,
)
from projections.audit.chain import Break, first_break
from projections.audit.checkpoint import load_public_pem, problem
from projections.audit.completeness import Completeness
from projections.audit.projection import ENTRY_COLUMNS

_SELECT = f"SELECT entry_id, {ENTRY_COLUMNS} FROM casebook_audit_entries"
_ORDER = " ORDER BY stream, subject, seq, entry_id"


@dataclass
class Verification:
    """What a verification covered, the first break of each broken chain and, when
    checked against the store, what the log lacks."""

    chains: int = 0
    entries: int = 0
    access_records: int = 0  # checked with the whole log only
    breaks: list[Break] = field(default_factory=list)
    completeness: Completeness | None = None  # None: not checked against the store

    @property
    def unmodified(self) -> bool:
        return not self.breaks

    @property
    def complete(self) -> bool | None:
        return self.completeness.complete if self.completeness is not None else None

    @property
    def intact(self) -> bool:
        """Unmodified and, when that was checked, complete."""
        return self.unmodified and self.complete is not False


def verify_case(conn: psycopg.Connection[Any], case_id: str) -> Verification:
    """The case's own chain and its SLA chain."""
    result = Verification()
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            f"{_SELECT} WHERE subject = %s AND stream IN ('case', 'sla'){_ORDER}", (case_id,)
        ).fetchall()
        heads = _heads(cursor, "WHERE subject = %s AND stream IN ('case', 'sla')", (case_id,))
    _check(iter(rows), heads, result)
    return result


def verify_log(
    conn: psycopg.Connection[Any], *, progress: Callable[[int], None] | None = None
) -> Verification:
    """Every chain of the log, streamed (constant memory whatever the log's size)."""
    result = Verification()
    with conn.cursor(row_factory=dict_row) as cursor:
        heads = _heads(cursor, "", ())
    with conn.transaction(), conn.cursor("audit-verify", row_factory=dict_row) as stream:
        stream.itersize = 5000
        stream.execute(f"{_SELECT}{_ORDER}")
        _check(iter(stream), heads, result, progress)
    _check_access_log(conn, result)
    return result


def _check_access_log(conn: psycopg.Connection[Any], result: Verification) -> None:
    """The access chain up to its recorded head (records appended meanwhile are left for
    the next verification), then every head a checkpoint signed; the first break of each."""
    head = checkpointer.access_head(conn)
    with conn.transaction(), conn.cursor("audit-access-verify", row_factory=dict_row) as rows:
        rows.itersize = 5000
        rows.execute(
            f"SELECT access_id, {', '.join(HASHED_FIELDS)}, hash FROM casebook_audit_access "
            "WHERE seq <= %s ORDER BY seq, access_id",
            (head[0],),
        )
        counted = _counted(rows, result)
        found = first_access_break(counted, head=head)
        for _ in counted:  # the rest, to count them
            pass
    if found is None:
        found = _signed_heads_break(conn)
    if found is not None:
        result.breaks.append(found)


def _counted(rows: Any, result: Verification) -> Iterator[dict[str, Any]]:
    for row in rows:
        result.access_records += 1
        yield row


def _signed_heads_break(conn: psycopg.Connection[Any]) -> Break | None:
    for checkpoint, pem, hashes in checkpointer.signed_access_heads(conn):
        why = problem(checkpoint, load_public_pem(pem.encode()))
        if why is not None:
            reason = f"checkpoint {checkpoint.number}, which signed its head: {why}"
            return Break(STREAM, SUBJECT, None, None, reason, KIND)
        assert checkpoint.access_seq is not None and checkpoint.access_hash is not None
        signed = checkpoint.access_hash
        held = signed if signed in hashes else (hashes[0] if hashes else None)
        found = signed_head_break(checkpoint.number, checkpoint.access_seq, signed, held)
        if found is not None:
            return found
    return None


def _heads(
    cursor: Any, where: str, params: tuple[Any, ...]
) -> dict[tuple[str, str], tuple[int, str]]:
    rows = cursor.execute(
        f"SELECT stream, subject, seq, hash FROM casebook_audit_heads {where}", params
    )
    return {(r["stream"], str(r["subject"])): (r["seq"], r["hash"]) for r in rows.fetchall()}


def _check(
    rows: Iterator[dict[str, Any]],
    heads: dict[tuple[str, str], tuple[int, str]],
    result: Verification,
    progress: Callable[[int], None] | None = None,
) -> None:
    seen: set[tuple[str, str]] = set()
    for (stream, subject), chain in groupby(rows, key=lambda r: (r["stream"], str(r["subject"]))):
        entries = list(chain)
        seen.add((stream, subject))
        result.chains += 1
        result.entries += len(entries)
        found = first_break(stream, subject, entries, head=heads.get((stream, subject)))
        if found is not None:
            result.breaks.append(found)
        if progress is not None:
            progress(len(entries))
    for stream, subject in sorted(heads.keys() - seen):
        result.chains += 1
        result.breaks.append(Break(stream, subject, 1, None, "every entry of the chain is missing"))
