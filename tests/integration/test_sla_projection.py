"""The SLA tracker on real PostgreSQL: clocks, queue order, timer, outbox (no broker here)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.envelope import Poison
from domain.values import Category, Severity
from projections.sla.timer import SlaTimer
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.sla_support import assess, project, rows, stored_envelopes
from tests.integration.write_side import as_agent, open_request, register_organisation

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

# Monday 2025-03-03 10:00 Shanghai.
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def casebook(clean_database: Database, clock: Clock) -> Iterator[Casebook]:
    casebook = Casebook.connect(
        clean_database, Settings(database_url=clean_database.url), clock=clock
    )
    yield casebook
    casebook.close()


def clock_row(database: Database, case_id: object) -> tuple[object, ...]:
    return rows(
        database,
        "SELECT state, deadline, at_risk_at, breached_at, met_at, stopped_at "
        "FROM casebook_sla_clocks "
        "WHERE case_id = %s AND metric = 'initial_response'",
        case_id,
    )[0]


def outbox_types(database: Database, case_id: object) -> list[str]:
    return [
        row[0]
        for row in rows(
            database,
            "SELECT type FROM casebook_sla_outbox WHERE subject = %s ORDER BY id",
            str(case_id),
        )
    ]


def test_an_assessed_case_gets_a_clock_a_queue_place_and_an_sla_event(
    casebook: Casebook, clean_database: Database
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    assess(casebook, case_id, Severity.B)
    project(clean_database, stored_envelopes(casebook))
    state, deadline, at_risk_at, *_ = clock_row(clean_database, case_id)
    assert state == "running"
    assert deadline == START + timedelta(days=1)  # 15 business hours of 09:00-24:00
    assert at_risk_at == START + timedelta(hours=12)
    [(status, severity, due_at)] = rows(
        clean_database,
        "SELECT status, severity, due_at FROM casebook_sla_cases WHERE case_id = %s",
        case_id,
    )
    assert (status, severity, due_at) == ("open", "B", deadline)
    # The triage clock started at the opening; the assessment recomputed it.
    assert outbox_types(clean_database, case_id) == [
        "casebook.sla.clock_started.v1",
        "casebook.sla.clock_recomputed.v1",
    ]


def test_the_timer_marks_at_risk_and_breach_at_their_true_instants_after_downtime(
    casebook: Casebook, clean_database: Database
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    assess(casebook, case_id, Severity.B)
    project(clean_database, stored_envelopes(casebook))
    late = START + timedelta(days=5)  # the timer was down for days
    timer = SlaTimer(clean_database.url, clock=lambda: late)
    with psycopg.connect(clean_database.url) as conn:
        assert timer.tick(conn) == 2
        assert timer.tick(conn) == 0  # nothing is marked twice
    state, deadline, _, breached_at, *_ = clock_row(clean_database, case_id)
    assert (state, breached_at) == ("breached", deadline)
    history = rows(
        clean_database,
        "SELECT change, at FROM casebook_sla_clock_history WHERE case_id = %s "
        "ORDER BY at, event_id",
        case_id,
    )
    assert history == [
        ("started", START),
        ("recomputed", START),  # the assessment, on the triage clock
        ("at_risk", START + timedelta(hours=12)),
        ("breached", deadline),
    ]
    assert outbox_types(clean_database, case_id)[-1] == "casebook.sla.clock_breached.v1"


def test_a_clock_not_yet_due_is_left_alone_by_the_timer(
    casebook: Casebook, clean_database: Database
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    assess(casebook, case_id, Severity.C)
    project(clean_database, stored_envelopes(casebook))
    timer = SlaTimer(clean_database.url, clock=lambda: START + timedelta(hours=1))
    with psycopg.connect(clean_database.url) as conn:
        assert timer.tick(conn) == 0
    assert clock_row(clean_database, case_id)[0] == "running"


def test_a_response_in_time_meets_the_target_and_leaves_the_queue_order(
    casebook: Casebook, clean_database: Database, clock: Clock
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    assess(casebook, case_id, Severity.B)
    clock.now = START + timedelta(hours=3)
    casebook.execute(c.Respond(case_id, "Looking into it"), as_agent())
    project(clean_database, stored_envelopes(casebook))
    state, _, _, _, met_at, _ = clock_row(clean_database, case_id)
    assert (state, met_at) == ("met", clock.now)
    [(due_at,)] = rows(
        clean_database, "SELECT due_at FROM casebook_sla_cases WHERE case_id = %s", case_id
    )
    assert due_at is None


def test_escalation_recomputes_from_the_opening_and_is_breached_at_once(
    casebook: Casebook, clean_database: Database, clock: Clock
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    assess(casebook, case_id, Severity.B)
    clock.now = START + timedelta(hours=2)
    casebook.execute(c.EscalateSeverity(case_id, Severity.A, "Whole site down"), as_agent())
    project(clean_database, stored_envelopes(casebook))
    state, deadline, _, breached_at, *_ = clock_row(clean_database, case_id)
    assert (state, deadline, breached_at) == ("breached", START + timedelta(hours=1), deadline)
    reasons = rows(
        clean_database,
        "SELECT reason FROM casebook_sla_clock_history "
        "WHERE case_id = %s AND change = 'recomputed' ORDER BY at, event_id",
        case_id,
    )
    assert reasons[-1] == ("escalated: B -> A",)  # after the assessment's recomputation


def test_events_split_over_batches_give_the_same_clocks_as_one_batch(
    casebook: Casebook, clean_database: Database, new_database: object, clock: Clock
) -> None:
    organisation = register_organisation(casebook)
    cases = [open_request(casebook, organisation, category=Category.BILLING) for _ in range(3)]
    for case_id in cases:
        assess(casebook, case_id, Severity.C)
    clock.now = START + timedelta(days=2)
    casebook.execute(c.Respond(cases[0], "Answer"), as_agent())
    events = stored_envelopes(casebook)
    for event in events:
        project(clean_database, [event])
    one_by_one = rows(clean_database, "SELECT * FROM casebook_sla_clocks ORDER BY case_id")
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE casebook_sla_clocks, casebook_sla_cases, "
            "casebook_sla_clock_history, casebook_sla_outbox"
        )
    project(clean_database, events)
    assert rows(clean_database, "SELECT * FROM casebook_sla_clocks ORDER BY case_id") == one_by_one


def test_a_presales_clock_is_the_same_whichever_partition_is_read_first(
    casebook: Casebook, clean_database: Database, clock: Clock
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation, category=Category.PRESALES)
    assess(casebook, case_id, Severity.B)
    clock.now = START + timedelta(hours=1)
    casebook.execute(c.Respond(case_id, "Answer"), as_agent())
    events = stored_envelopes(casebook)
    organisation_events = [e for e in events if e.subject == str(organisation)]
    project(clean_database, events)
    in_store_order = rows(clean_database, "SELECT * FROM casebook_sla_clocks")
    [(deadline,)] = rows(clean_database, "SELECT deadline FROM casebook_sla_clocks")
    assert deadline is not None  # the customer's hours, recorded with the opening
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE casebook_sla_clocks, casebook_sla_cases, casebook_sla_organisations, "
            "casebook_sla_clock_history, casebook_sla_outbox"
        )
    # A rebuild may read the case's partition before the organisation's.
    project(clean_database, [e for e in events if e not in organisation_events])
    project(clean_database, organisation_events)
    assert rows(clean_database, "SELECT * FROM casebook_sla_clocks") == in_store_order


def test_an_event_under_an_unknown_policy_version_is_poison(
    casebook: Casebook, clean_database: Database
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    assess(casebook, case_id, Severity.B)
    events = stored_envelopes(casebook)
    assessed = events[-1]
    forged = type(assessed)(
        **{**vars(assessed), "data": {**assessed.data, "policy_version": "0.0"}}
    )
    with pytest.raises(Poison, match=r"policy version '0\.0' is unknown"):
        project(clean_database, [*events[:-1], forged])
