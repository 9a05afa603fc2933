"""A case with a known past for the auditor tests: every state it had, at known instants."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from api.views import CaseView
from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Severity
from projections.audit.projection import AuditProjection
from tests.integration.sla_support import stored_envelopes
from tests.integration.write_side import as_agent, open_request, register_organisation

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class CasePast:
    """The case, and per version the instant it happened and the state it left."""

    organisation_id: UUID
    case_id: UUID
    instants: dict[int, datetime] = field(default_factory=dict)
    states: dict[int, dict[str, Any]] = field(default_factory=dict)


def live_a_case(database: Database, *, audit: bool = True) -> CasePast:
    """Open a case and take it through assessment, escalation, a downgrade after the
    customer left a question unanswered for 26 hours, a response, resolution and a
    reopen; one event per step, hours apart. Optionally fill the audit log from it."""
    clock = Clock(START)
    casebook = Casebook.connect(database, Settings(database_url=database.url), clock=clock)
    try:
        organisation_id = register_organisation(casebook)
        past = CasePast(organisation_id, UUID(int=0))

        def step(hours: float, run: Any) -> None:
            clock.now = START + timedelta(hours=hours)
            run()
            case = casebook.get_case(past.case_id)
            past.instants[case.version] = clock.now
            past.states[case.version] = CaseView.of(case).model_dump(mode="json")

        def opening() -> None:
            past.case_id = open_request(casebook, organisation_id)

        case = lambda: past.case_id  # noqa: E731  (the id exists once opened)
        step(1, opening)
        step(2, lambda: casebook.execute(c.AssignSeverity(case(), Severity.B), as_agent()))
        step(
            3, lambda: casebook.execute(c.EscalateSeverity(case(), Severity.A, "Down"), as_agent())
        )
        asked = START + timedelta(hours=4)
        step(
            30,
            lambda: casebook.execute(
                c.RecordCustomerUnresponsive(case(), "the error log", asked), as_agent()
            ),
        )
        step(
            31,
            lambda: casebook.execute(
                c.DowngradeSeverity(case(), Severity.B, "No log in 26 h"), as_agent()
            ),
        )
        step(32, lambda: casebook.execute(c.Respond(case(), "Please send the log"), as_agent()))
        step(
            33,
            lambda: casebook.execute(c.Resolve(case(), "Fixed the MX record", "fixed"), as_agent()),
        )
        step(34, lambda: casebook.execute(c.Reopen(case(), "Mail bounces again"), as_agent()))
        if audit:
            with psycopg.connect(database.url) as conn, conn.transaction():
                AuditProjection().apply(conn, stored_envelopes(casebook))
        return past
    finally:
        casebook.close()
