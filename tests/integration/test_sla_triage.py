"""Triage clocks on real PostgreSQL: an unassessed case is tracked from its opening on the
strictest target the policy allows it, marked unassessed, until its assessment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Agreement, Category, Role, Severity
from projections.sla.timer import SlaTimer
from tests.integration.api_support import open_case, register_acme, running_api
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.sla_support import assess, project, rows, stored_envelopes
from tests.integration.write_side import ADMIN, open_request, register_organisation

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


def initial_clock(database: Database, case_id: object) -> tuple[object, ...]:
    return rows(
        database,
        "SELECT severity, assessed, state, deadline, breached_at FROM casebook_sla_clocks "
        "WHERE case_id = %s AND metric = 'initial_response'",
        case_id,
    )[0]


def history(database: Database, case_id: object) -> list[tuple[object, ...]]:
    return rows(
        database,
        "SELECT change, at FROM casebook_sla_clock_history WHERE case_id = %s "
        "ORDER BY at, event_id",
        case_id,
    )


def tick_at(database: Database, now: datetime) -> int:
    with psycopg.connect(database.url) as conn:
        return SlaTimer(database.url, clock=lambda: now).tick(conn)


def test_the_unassessed_case_turns_at_risk_and_breached_on_time_with_no_event(
    casebook: Casebook, clean_database: Database
) -> None:
    organisation = register_organisation(casebook, agreement=Agreement.ADVANCED)
    case_id = open_request(casebook, organisation)
    project(clean_database, stored_envelopes(casebook))
    # Technical, advanced agreement: severity A's 1 hour, 24x7, from the opening.
    assert initial_clock(clean_database, case_id) == (
        "A",
        False,
        "running",
        START + timedelta(hours=1),
        None,
    )
    assert tick_at(clean_database, START + timedelta(minutes=47)) == 0
    assert tick_at(clean_database, START + timedelta(minutes=48)) == 1
    assert tick_at(clean_database, START + timedelta(hours=1)) == 1
    deadline = START + timedelta(hours=1)
    assert initial_clock(clean_database, case_id) == ("A", False, "breached", deadline, deadline)
    assert history(clean_database, case_id) == [
        ("started", START),
        ("at_risk", START + timedelta(minutes=48)),
        ("breached", deadline),
    ]
    [payload] = rows(
        clean_database,
        "SELECT payload FROM casebook_sla_outbox WHERE subject = %s AND type LIKE %s",
        str(case_id),
        "%breached%",
    )[0]
    assert payload["assessed"] is False and payload["severity"] == "A"


@pytest.mark.parametrize("organisation_events_first", [True, False])
def test_the_triage_target_is_the_one_decided_at_opening_whatever_the_order_read(
    casebook: Casebook, clean_database: Database, organisation_events_first: bool
) -> None:
    organisation = register_organisation(casebook, agreement=Agreement.STANDARD)
    case_id = open_request(casebook, organisation)
    # A later agreement does not move the case's triage target: the opening records it.
    casebook.execute(c.ChangeAgreement(organisation, Agreement.ADVANCED), ADMIN)
    events = stored_envelopes(casebook)
    case_events = [e for e in events if e.subject == str(case_id)]
    others = [e for e in events if e.subject != str(case_id)]
    project(clean_database, others + case_events if organisation_events_first else events)
    assert case_events[0].data["triage_severity"] == "B"
    severity, assessed, state, *_ = initial_clock(clean_database, case_id)
    assert (severity, assessed, state) == ("B", False, "running")


@pytest.mark.parametrize(
    ("agreement", "category"),
    [(Agreement.STANDARD, Category.TECHNICAL), (Agreement.ADVANCED, Category.BILLING)],
)
def test_a_standard_agreement_or_non_technical_case_runs_on_the_b_target(
    casebook: Casebook, clean_database: Database, agreement: Agreement, category: Category
) -> None:
    organisation = register_organisation(casebook, agreement=agreement)
    case_id = open_request(casebook, organisation, category=category)
    project(clean_database, stored_envelopes(casebook))
    severity, assessed, state, *_ = initial_clock(clean_database, case_id)
    assert (severity, assessed, state) == ("B", False, "running")


def test_assessing_recomputes_from_the_opening_and_lifts_the_triage_breach(
    casebook: Casebook, clean_database: Database, clock: Clock
) -> None:
    organisation = register_organisation(casebook, agreement=Agreement.ADVANCED)
    case_id = open_request(casebook, organisation)
    project(clean_database, stored_envelopes(casebook))
    assert tick_at(clean_database, START + timedelta(hours=1, minutes=30)) == 2
    seen = len(stored_envelopes(casebook))
    clock.now = START + timedelta(hours=2)
    assess(casebook, case_id, Severity.C)
    project(clean_database, stored_envelopes(casebook)[seen:])
    # C: 3 business days of 15 h (09:00-24:00 Shanghai) from the opening, Thursday 10:00.
    thursday = datetime(2025, 3, 6, 2, 0, tzinfo=UTC)
    assert initial_clock(clean_database, case_id) == ("C", True, "running", thursday, None)
    assert [change for change, _ in history(clean_database, case_id)] == [
        "started", "at_risk", "breached", "recomputed",
    ]  # fmt: skip


def test_the_queue_orders_an_unassessed_case_by_its_deadline_and_the_report_counts_it(
    clean_database: Database,
) -> None:
    with running_api(clean_database) as api, TestClient(api.app) as client:
        organisation = register_acme(client, api)  # advanced agreement
        assessed = open_case(client, api, organisation)
        response = client.post(
            f"/cases/{assessed}/severity", json={"severity": "B"}, headers=api.as_(Role.AGENT)
        )
        assert response.status_code == 200, response.text
        unassessed = open_case(client, api, organisation)
        project(clean_database, stored_envelopes(api.casebook))
        items = client.get("/queue", headers=api.as_(Role.AGENT)).json()["items"]
        # The unassessed case's triage clock (A: 1 hour) comes before B's business day.
        assert [item["case_id"] for item in items] == [unassessed, assessed]
        first = items[0]
        assert first["severity"] is None and first["due_at"] is not None
        assert (first["clock"]["assessed"], first["clock"]["severity"]) == (False, "A")
        assert items[1]["clock"]["assessed"] is True
        sla = client.get(f"/cases/{unassessed}/sla", headers=api.as_(Role.AGENT)).json()
        assert sla["clocks"][0]["assessed"] is False
        now = datetime.now(UTC)
        assert tick_at(clean_database, now + timedelta(hours=2)) >= 2
        report = client.get(
            "/reports/sla-compliance",
            params={
                "since": (now - timedelta(days=1)).isoformat(),
                "until": (now + timedelta(days=1)).isoformat(),
            },
            headers=api.as_(Role.SUPERVISOR),
        ).json()
        assert report["overall"]["breached"] == 1
        assert report["by_severity"]["A"]["breached"] == 1
