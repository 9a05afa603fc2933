"""Reads of the audit log for auditors, and the access records of reads of case data."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from projections.audit.access_chain import HASHED_FIELDS, record_hash
from projections.audit.chain import GENESIS
from projections.audit.projection import ENTRY_COLUMNS


@dataclass(frozen=True)
class Access:
    """One read of case data: who, as which role, through which route, when and why."""

    principal_id: str
    role: str
    route: str
    method: str
    path: str
    case_id: str | None
    organisation_id: str | None
    reason: str | None
    request_id: str | None
    client_address: str | None
    on_behalf_of: str | None = None  # the customer admin the portal read for


_ACCESS_COLUMNS = (
    "access_id, at, principal_id, role, route, method, path, case_id, organisation_id, "
    "reason, request_id, client_address, on_behalf_of, seq, hash"
)
_HEAD = "casebook_audit_access_head"


def record_access(conn: psycopg.Connection[Any], access: Access) -> int:
    """Append one access record to the access chain (the caller owns the transaction); its
    id. The head row's lock, held to the end of the transaction, makes concurrent writers
    (every API process) append one after another, each linking to the one before."""
    head = _locked_head(conn)
    record = {
        **asdict(access),
        "case_id": _uuid(access.case_id),
        "organisation_id": _uuid(access.organisation_id),
        "seq": head["seq"] + 1,
        "at": head["now"],
        "prev_hash": head["hash"],
    }
    record["hash"] = record_hash(record)
    row = conn.execute(
        f"WITH added AS (INSERT INTO casebook_audit_access ({', '.join(_INSERTED)}) "
        f"VALUES ({', '.join(f'%({name})s' for name in _INSERTED)}) "
        "RETURNING access_id, seq, hash) "
        f"UPDATE {_HEAD} SET seq = added.seq, hash = added.hash FROM added "
        "RETURNING added.access_id",
        record,
    ).fetchone()
    assert row is not None
    return int(row[0])


_INSERTED = (*HASHED_FIELDS, "hash")


def _locked_head(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The chain's head, locked, and the time the next record is written (read with the
    lock: a writer that waited for it writes the time it got it)."""
    with conn.cursor(row_factory=dict_row) as cursor:
        for _ in range(2):
            found = cursor.execute(
                f"SELECT seq, hash, clock_timestamp() AS now FROM {_HEAD} FOR UPDATE"
            ).fetchone()
            if found is not None:
                return found
            # No head row (an emptied log): the chain starts again from the genesis. A head
            # deleted under an existing chain shows in verification as a repeated record 1.
            cursor.execute(
                f"INSERT INTO {_HEAD} (seq, hash) VALUES (0, %s) ON CONFLICT DO NOTHING",
                (GENESIS,),
            )
    raise RuntimeError(f"{_HEAD} has no row")  # pragma: no cover - inserted just above


def _uuid(value: str | None) -> str | None:
    # As the database gives it back, so the hash verification recomputes is this one.
    return str(UUID(value)) if value is not None else None


def timeline(conn: psycopg.Connection[Any], case_id: str) -> list[dict[str, Any]]:
    """The case's entries (its own stream and its SLA stream), in the order things happened."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"SELECT entry_id, {ENTRY_COLUMNS} FROM casebook_audit_entries "
            "WHERE subject = %s AND stream IN ('case', 'sla') "
            "ORDER BY occurred_at, recorded_at, entry_id",
            (case_id,),
        ).fetchall()


def entry_count(conn: psycopg.Connection[Any]) -> int:
    """How many entries the whole log holds (for a progress display)."""
    row = conn.execute("SELECT count(*) FROM casebook_audit_entries").fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class AccessFilter:
    """Which access records to list: all filters optional; `until` is exclusive."""

    case_id: str | None = None
    principal_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def access_records(
    conn: psycopg.Connection[Any], where: AccessFilter, *, limit: int, after: int | None
) -> list[dict[str, Any]]:
    """Access records matching `where`, oldest first, after the record id `after`."""
    clauses: list[str] = ["access_id > %s"]
    params: list[Any] = [after or 0]
    for column, op, value in (
        ("case_id", "=", where.case_id),
        ("principal_id", "=", where.principal_id),
        ("at", ">=", where.since),
        ("at", "<", where.until),
    ):
        if value is not None:
            clauses.append(f"{column} {op} %s")
            params.append(value)
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"SELECT {_ACCESS_COLUMNS} FROM casebook_audit_access "
            f"WHERE {' AND '.join(clauses)} ORDER BY access_id LIMIT %s",
            (*params, limit),
        ).fetchall()


def encode_cursor(access_id: int) -> str:
    return base64.urlsafe_b64encode(f"access:{access_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The access id a cursor continues after; None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = raw.partition(":")
        value = int(number)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if kind == "access" and 0 <= value < 2**63 else None
