"""The write side on real PostgreSQL: events, concurrency, idempotency, atomicity."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.errors import CaseNotFound, IdempotencyKeyReused, VersionConflict
from casebook.settings import Settings
from domain.cases.state import NoteVisibility
from domain.policy.rules import SeverityNeedsAgreement, SeverityNotForCategory
from domain.values import Agreement, Category, Role, Severity
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.write_side import (
    ADMIN,
    AGENT,
    as_agent,
    open_request,
    register_organisation,
)

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]


@pytest.fixture
def connect(clean_database: Database) -> Iterator[Callable[[], Casebook]]:
    """Open Casebook instances on a clean database (several act as several processes)."""
    opened: list[Casebook] = []

    def make() -> Casebook:
        casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
        opened.append(casebook)
        return casebook

    yield make
    for casebook in opened:
        casebook.close()


@pytest.fixture
def casebook(connect: Callable[[], Casebook]) -> Casebook:
    return connect()


def stored_events(database: Database) -> list[tuple[Any, int]]:
    with psycopg.connect(database.url) as conn:
        return conn.execute(
            "SELECT originator_id, originator_version FROM casebook_events ORDER BY notification_id"
        ).fetchall()


def note(case_id: Any, text: str) -> c.AddNote:
    return c.AddNote(case_id, text, NoteVisibility.INTERNAL)


def run_concurrently(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Start `count` threads together; return each one's result or exception."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def worker(index: int) -> None:
        start.wait()
        try:
            results[index] = action(index)
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_commands_record_versioned_events_with_who_and_policy(casebook: Casebook) -> None:
    case_id = open_request(casebook, register_organisation(casebook))
    result = casebook.execute(c.AssignSeverity(case_id, Severity.A), as_agent(expected=1))

    assert (result.version, result.events) == (2, ("casebook.case.severity_assigned.v1",))
    history = casebook.case_history(case_id)
    assert [e.type for e in history] == [
        "casebook.case.opened.v5",
        "casebook.case.severity_assigned.v1",
    ]
    assert history[1].actor == AGENT
    assert history[1].data["policy_version"] == casebook.policy.version
    assert casebook.get_case(case_id).severity is Severity.A


def test_a_stale_expected_version_is_refused_with_the_current_version(casebook: Casebook) -> None:
    case_id = open_request(casebook, register_organisation(casebook))
    casebook.execute(note(case_id, "first"), as_agent(expected=1))
    with pytest.raises(VersionConflict) as refused:
        casebook.execute(note(case_id, "stale"), as_agent(expected=1))
    assert (refused.value.current_version, refused.value.expected_version) == (2, 1)


def test_twenty_concurrent_writers_on_one_version_one_wins(
    casebook: Casebook, clean_database: Database
) -> None:
    case_id = open_request(casebook, register_organisation(casebook))
    results = run_concurrently(
        20, lambda i: casebook.execute(note(case_id, f"w{i}"), as_agent(expected=1))
    )

    winners = [r for r in results if isinstance(r, c.CommandResult)]
    losers = [r for r in results if isinstance(r, VersionConflict)]
    assert len(winners) == 1 and len(losers) == 19
    assert {loser.current_version for loser in losers} == {2}
    versions = [v for originator, v in stored_events(clean_database) if originator == case_id]
    assert versions == [1, 2]


def test_concurrent_writers_without_expectations_all_land_in_order(
    casebook: Casebook, clean_database: Database
) -> None:
    case_id = open_request(casebook, register_organisation(casebook))
    results = run_concurrently(20, lambda i: casebook.execute(note(case_id, f"n{i}"), as_agent()))

    assert all(isinstance(r, c.CommandResult) for r in results)
    assert sorted(r.version for r in results) == list(range(2, 22))
    versions = [v for originator, v in stored_events(clean_database) if originator == case_id]
    assert versions == list(range(1, 22))
    assert len(casebook.get_case(case_id).notes) == 20


def test_a_retried_command_with_its_key_writes_once_and_answers_alike(
    casebook: Casebook, clean_database: Database
) -> None:
    case_id = open_request(casebook, register_organisation(casebook))
    sequential = [casebook.execute(note(case_id, "once"), as_agent(key="k-seq")) for _ in range(5)]
    concurrent = run_concurrently(
        5, lambda _: casebook.execute(note(case_id, "twice"), as_agent(key="k-par"))
    )

    for answers in (sequential, concurrent):
        assert len({(a.aggregate_id, a.version, a.events) for a in answers}) == 1
        assert sum(not a.replayed for a in answers) == 1
    versions = [v for originator, v in stored_events(clean_database) if originator == case_id]
    assert versions == [1, 2, 3]


def test_a_key_reused_for_another_request_is_refused(casebook: Casebook) -> None:
    case_id = open_request(casebook, register_organisation(casebook))
    casebook.execute(note(case_id, "first"), as_agent(key="k"))
    with pytest.raises(IdempotencyKeyReused, match="different request"):
        casebook.execute(note(case_id, "second"), as_agent(key="k"))


def test_a_retry_that_would_now_break_a_rule_returns_the_first_answer(casebook: Casebook) -> None:
    case_id = open_request(casebook, register_organisation(casebook))
    first = casebook.execute(
        c.AssignSeverity(case_id, Severity.B), as_agent(key="assess", expected=1)
    )
    again = casebook.execute(
        c.AssignSeverity(case_id, Severity.B), as_agent(key="assess", expected=1)
    )
    assert again.replayed and (again.version, again.events) == (first.version, first.events)


def test_a_refused_command_writes_nothing(casebook: Casebook, clean_database: Database) -> None:
    organisation_id = register_organisation(casebook)
    case_id = open_request(casebook, organisation_id, category=Category.BILLING)
    before = stored_events(clean_database)
    with pytest.raises(SeverityNotForCategory):
        casebook.execute(c.AssignSeverity(case_id, Severity.A), as_agent(key="bad"))
    assert stored_events(clean_database) == before


def test_a_conflict_from_another_process_does_not_sink_the_batch(
    connect: Callable[[], Casebook], clean_database: Database
) -> None:
    mine, other = connect(), connect()
    organisation_id = register_organisation(mine)
    cases = [open_request(mine, organisation_id) for _ in range(6)]
    for case_id in cases:
        mine.execute(note(case_id, "cached here"), as_agent())
    # Another process moves case 0 on: this process's cached copy is now behind.
    other.execute(note(cases[0], "from elsewhere"), as_agent())

    results = run_concurrently(6, lambda i: mine.execute(note(cases[i], "batch"), as_agent()))

    assert all(isinstance(r, c.CommandResult) for r in results), results
    assert results[0].version == 4
    assert len(mine.get_case(cases[0]).notes) == 3


def test_a_duplicate_key_from_another_process_replays_and_keeps_the_batch(
    connect: Callable[[], Casebook], clean_database: Database
) -> None:
    mine, other = connect(), connect()
    organisation_id = register_organisation(mine)
    cases = [open_request(mine, organisation_id) for _ in range(4)]
    first = other.execute(note(cases[0], "retried"), as_agent(key="dup"))

    results = run_concurrently(
        4,
        lambda i: mine.execute(
            note(cases[i], "retried" if i == 0 else f"n{i}"),
            as_agent(key="dup" if i == 0 else None),
        ),
    )

    assert results[0] == c.CommandResult(first.aggregate_id, first.version, first.events, True)
    assert all(isinstance(r, c.CommandResult) and not r.replayed for r in results[1:])
    notes = [v for o, v in stored_events(clean_database) if o == cases[0]]
    assert notes == [1, 2]


def test_cases_are_listed_per_organisation_page_by_page(casebook: Casebook) -> None:
    organisation_id = register_organisation(casebook)
    opened = [open_request(casebook, organisation_id) for _ in range(5)]
    casebook.execute(c.AssignSeverity(opened[0], Severity.B), as_agent())

    first = casebook.cases_of_organisation(organisation_id, limit=3)
    second = casebook.cases_of_organisation(organisation_id, limit=3, after=first.next_cursor)

    assert [s.case_id for s in first.items + second.items] == opened
    assert second.next_cursor is None
    assert (first.items[0].status, first.items[0].severity) == ("open", "B")
    assert first.items[1].status == "awaiting_assessment"


def test_unknown_ids_are_not_found(casebook: Casebook) -> None:
    organisation_id = register_organisation(casebook)
    with pytest.raises(CaseNotFound):
        casebook.get_case(uuid4())
    with pytest.raises(CaseNotFound):
        casebook.get_case(organisation_id)  # an organisation is not a case
    with pytest.raises(CaseNotFound):
        casebook.execute(note(uuid4(), "lost"), as_agent())


def test_every_event_records_the_acting_principal(casebook: Casebook) -> None:
    case_id = open_request(casebook, register_organisation(casebook))
    casebook.execute(c.AssignSeverity(case_id, Severity.C), as_agent())
    roles = {event.actor.role for event in casebook.case_history(case_id) if event.actor}
    assert roles == {Role.AGENT}


def test_rules_never_decide_on_an_organisation_another_process_changed(
    connect: Callable[[], Casebook],
) -> None:
    mine, other = connect(), connect()
    organisation_id = register_organisation(mine)  # advanced agreement, cached here
    case_id = open_request(mine, organisation_id)
    other.execute(c.ChangeAgreement(organisation_id, Agreement.STANDARD), ADMIN)

    with pytest.raises(SeverityNeedsAgreement):
        mine.execute(c.AssignSeverity(case_id, Severity.A), as_agent())
    assert mine.get_case(case_id).severity is None
