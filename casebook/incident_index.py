"""The incident index: one row per service incident, written with its events.

The write side reads it for the incidents in force when a request opens (their
aggregates are then loaded and consulted) and the API for the service health
dashboard, without replaying every incident's events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from domain.incidents import ServiceIncident

HISTORY = timedelta(days=30)  # how far back the dashboard lists closed incidents

# Rows are written in commit order (under the event table's lock): the last write wins.
UPSERT = (
    "INSERT INTO casebook_incident_index (incident_id, services, categories, summary,"
    " started_at, ended_at) SELECT u.i, ARRAY(SELECT jsonb_array_elements_text(u.s)),"
    " ARRAY(SELECT jsonb_array_elements_text(u.c)), u.m, u.b, u.e FROM unnest(%s::uuid[],"
    " %s::jsonb[], %s::jsonb[], %s::text[], %s::timestamptz[], %s::timestamptz[])"
    " AS u(i, s, c, m, b, e)"
    " ON CONFLICT (incident_id) DO UPDATE SET services = EXCLUDED.services,"
    " categories = EXCLUDED.categories, summary = EXCLUDED.summary,"
    " ended_at = EXCLUDED.ended_at"
)


@dataclass(frozen=True)
class IncidentRow:
    """An incident as the dashboard lists it."""

    incident_id: UUID
    services: list[str]
    categories: list[str]
    summary: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class ServiceHealth:
    """Incidents in force, declared to start later, and closed within `HISTORY`."""

    in_force: list[IncidentRow]
    scheduled: list[IncidentRow]
    history: list[IncidentRow]


def row_of(incident: ServiceIncident) -> IncidentRow:
    """The index row of an incident's current state."""
    return IncidentRow(
        incident.id,
        list(incident.services),
        [str(c) for c in incident.categories],
        incident.summary,
        incident.started_at,
        incident.ended_at,
    )


def upsert_parameters(rows: Sequence[IncidentRow]) -> tuple[list[Any], ...]:
    """`UPSERT`'s column arrays, one row per incident (its last), lists as JSON."""
    latest = {r.incident_id: r for r in rows}
    ordered = [latest[i] for i in sorted(latest)]
    return (
        [r.incident_id for r in ordered],
        [Jsonb(r.services) for r in ordered],
        [Jsonb(r.categories) for r in ordered],
        [r.summary for r in ordered],
        [r.started_at for r in ordered],
        [r.ended_at for r in ordered],
    )


class OpenIncidents:
    """The incidents not closed yet, read at most once per batch of commands: the writer
    thread's openings share one query. Those an opening shows are then loaded and
    consulted, so one closed since the read never decides a save."""

    def __init__(self, connection: Callable[[], AbstractContextManager[Any]]) -> None:
        self._connection = connection
        self._open: list[tuple[UUID, datetime]] | None = None

    def forget(self) -> None:
        """Read the index again at the next question (a new batch)."""
        self._open = None

    def started_by(self, at: datetime) -> list[UUID]:
        """The ids of open incidents started by `at`, oldest first."""
        if self._open is None:
            with self._connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
                rows = cursor.execute(
                    "SELECT incident_id, started_at FROM casebook_incident_index"
                    " WHERE ended_at IS NULL ORDER BY started_at, incident_id"
                ).fetchall()
            self._open = [(row["incident_id"], row["started_at"]) for row in rows]
        return [incident for incident, started_at in self._open if started_at <= at]


def service_health(conn: psycopg.Connection[Any], at: datetime) -> ServiceHealth:
    """The dashboard at `at`: in force and scheduled (by start), history (latest end first)."""
    with conn.cursor(row_factory=class_row(IncidentRow)) as cursor:
        rows = cursor.execute(
            "SELECT incident_id, services, categories, summary, started_at, ended_at"
            " FROM casebook_incident_index WHERE ended_at IS NULL OR ended_at >= %s"
            " ORDER BY started_at, incident_id",
            (at - HISTORY,),
        ).fetchall()
    return ServiceHealth(
        in_force=[r for r in rows if r.ended_at is None and r.started_at <= at],
        scheduled=[r for r in rows if r.ended_at is None and r.started_at > at],
        history=sorted(
            (r for r in rows if r.ended_at is not None),
            key=lambda r: r.ended_at or at,
            reverse=True,
        ),
    )
