"""Reads of the audit log for auditors, and the access records of reads of case data."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

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
    "reason, request_id, client_address, on_behalf_of"
)


def record_access(conn: psycopg.Connection[Any], access: Access) -> int:
    """Insert one access record (the caller owns the transaction); its id."""
    row = conn.execute(
        "INSERT INTO casebook_audit_access (principal_id, role, route, method, path, case_id, "
        "organisation_id, reason, request_id, client_address, on_behalf_of) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING access_id",
        (
            access.principal_id,
            access.role,
            access.route,
            access.method,
            access.path,
            access.case_id,
            access.organisation_id,
            access.reason,
            access.request_id,
            access.client_address,
            access.on_behalf_of,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


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
