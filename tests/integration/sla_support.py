"""Helpers for SLA tests: stored events as consumed envelopes, the tracker's rows."""

from __future__ import annotations

from typing import Any

import psycopg

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.policy_source import load_policy
from consumers.envelope import Envelope, decode
from domain.values import Severity
from projections.sla.projection import SlaProjection
from projections.sla.targets import TargetBook
from relay.cloudevents import record_for
from tests.integration.write_side import as_agent

TOPIC = "casebook.case-events.v1"


def stored_envelopes(casebook: Casebook, after: int = 0) -> list[Envelope]:
    """Every event stored after notification `after`, as the consumer would decode it."""
    recorder = casebook.store.recorder
    notifications = recorder.select_notifications(start=after + 1, limit=1_000_000)
    envelopes = []
    for n in notifications:
        record = record_for(
            casebook.store.mapper.to_domain_event(n), n.id, source="/test", include_personal=False
        )
        envelopes.append(decode(TOPIC, 0, n.id - 1, record.headers, record.value))
    return envelopes


def assess(casebook: Casebook, case_id: object, severity: Severity) -> None:
    """Assign `severity` to a case as an agent: its SLA clock can start."""
    casebook.execute(c.AssignSeverity(case_id, severity), as_agent())  # type: ignore[arg-type]


def sla_projection() -> SlaProjection:
    return SlaProjection(TargetBook([load_policy()]))


def project(
    database: Database, events: list[Envelope], projection: SlaProjection | None = None
) -> None:
    """Apply `events` in one transaction, as one consumer batch."""
    with psycopg.connect(database.url) as conn, conn.transaction():
        (projection or sla_projection()).apply(conn, events)


def rows(database: Database, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.url) as conn:
        return conn.execute(query, params).fetchall()
