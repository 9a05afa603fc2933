"""A worked history at scale: cases with a mix of stories, written from many threads, and
each case's last version in the store and in the SLA projection."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from domain.cases.state import NoteVisibility
from domain.values import Category, Severity
from tests.integration.write_side import as_agent, open_request, register_organisation

WRITERS = 16


def query(database: Database, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows `sql` returns on `database`, `params` bound in order."""
    with psycopg.connect(database.url) as conn:
        return conn.execute(sql, params).fetchall()


def work_case(casebook: Casebook, organisation_id: uuid.UUID, index: int, events: int) -> None:
    """One case's story in about `events` events: a mix of categories, severities, outcomes.

    Presales cases count the customer's hours (the locale recorded at opening), billing
    China's business days, technical ones 24x7 or the extended daily hours.
    """
    category = {3: Category.PRESALES, 4: Category.BILLING}.get(index % 5, Category.TECHNICAL)
    capped = category is not Category.TECHNICAL  # only technical support gets severity A
    severity = (Severity.B, Severity.C)[index % 2] if capped else tuple(Severity)[index % 3]
    case_id = open_request(casebook, organisation_id, category=category)
    casebook.execute(c.AssignSeverity(case_id, severity), as_agent())
    steps: list[c.CaseCommand] = []
    if not capped and severity is not Severity.A and index % 7 == 0:
        steps.append(c.EscalateSeverity(case_id, Severity.A, "the whole office is down"))
    if index % 2:
        steps.append(c.AssignAgent(case_id, "bob"))
    responds = index % 3 != 1
    if responds:
        steps.append(c.Respond(case_id, "Looking into it"))
    resolve = responds and index % 4 == 0  # a case is resolved after a first response
    # A resolution records two events: Resolved and its SurveyInvited.
    notes = events - 2 - len(steps) - 2 * resolve
    steps.extend(c.AddNote(case_id, f"note {n}", NoteVisibility.INTERNAL) for n in range(notes))
    if resolve:
        steps.append(c.Resolve(case_id, "Fixed", "fixed"))
    for step in steps:
        casebook.execute(step, as_agent())


def store_cases(casebook: Casebook, cases: int, events_per_case: int) -> uuid.UUID:
    """One organisation and its worked cases, written from several threads (group commit)."""
    organisation_id = register_organisation(casebook)

    def write(worker: int) -> None:
        for index in range(worker, cases, WRITERS):
            work_case(casebook, organisation_id, index, events_per_case)

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    return organisation_id


def store_versions(database: Database, organisation_id: uuid.UUID) -> dict[str, int]:
    """Each stored case's last version."""
    rows = query(
        database,
        "SELECT originator_id::text, max(originator_version) FROM casebook_events"
        " WHERE originator_id <> %s GROUP BY 1",
        organisation_id,
    )
    return dict(rows)


def projected_versions(database: Database) -> dict[str, int]:
    """Each case's version as the SLA projection last applied it."""
    return dict(query(database, "SELECT case_id::text, version FROM casebook_sla_cases"))
