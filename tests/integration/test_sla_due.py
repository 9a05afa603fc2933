"""The timer's SQL statement makes exactly what the clock model's `advance` makes.

`domain.sla.clock.advance` is the rule (pure, unit-tested); `due.advance_due` is its SQL
form for the timer. Random clocks in every state, with instants before and after the
tick's `now`, are stored; one tick later the clocks, their history and their outbox
events (payloads as `events.outbox_row` writes them) must equal what the domain model
gives, row for row.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casebook.database import Database
from domain.sla.clock import Clock, Metric, State, Transition, advance, last
from projections.sla import store
from projections.sla.events import outbox_row
from projections.sla.timer import SlaTimer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ORGANISATION = "0b0b0b0b-0000-4000-8000-000000000001"
CATEGORY = "technical"

offsets = st.integers(min_value=-3 * 86_400_000_000, max_value=3 * 86_400_000_000)
whole_seconds = st.integers(min_value=-3 * 86_400, max_value=3 * 86_400).map(
    lambda s: s * 1_000_000
)


@st.composite
def clocks(draw: st.DrawFn, number: int) -> Clock:
    """A stored clock in any state; instants around NOW, some on whole seconds."""
    at_risk = NOW + timedelta(microseconds=draw(st.one_of(offsets, whole_seconds)))
    deadline = at_risk + timedelta(microseconds=draw(st.integers(0, 2 * 86_400_000_000)))
    state = draw(st.sampled_from(State))
    known = draw(st.booleans()) or state is not State.RUNNING
    return Clock(
        case_id=str(uuid.UUID(int=number + 1)),
        metric=draw(st.sampled_from(Metric)),
        severity=draw(st.sampled_from(["A", "B", "C"])),
        policy_version="2025.2",
        started_at=at_risk - timedelta(hours=8),
        target=timedelta(hours=10),
        calendar="24x7",
        description="10 hours, around the clock",
        deadline=deadline if known else None,
        at_risk_at=at_risk if known else None,
        provisional=draw(st.booleans()),
        state=state,
        met_at=NOW - timedelta(hours=1) if state is State.MET else None,
        breached_at=deadline if state is State.BREACHED else None,
        stopped_at=draw(st.sampled_from([None, NOW - timedelta(minutes=5)]))
        if state in (State.BREACHED, State.STOPPED)
        else None,
        transitions=draw(st.integers(1, 9)),
    )


@st.composite
def clock_sets(draw: st.DrawFn) -> list[Clock]:
    count = draw(st.integers(1, 12))
    return [draw(clocks(number)) for number in range(count)]


def store_clocks(conn: psycopg.Connection[Any], stored: list[Clock], orphan: str | None) -> None:
    conn.execute(
        "TRUNCATE casebook_sla_cases, casebook_sla_clocks, casebook_sla_clock_history, "
        "casebook_sla_outbox RESTART IDENTITY"
    )
    for clock in stored:
        if clock.case_id == orphan:  # a clock whose case row is missing
            continue
        conn.execute(
            "INSERT INTO casebook_sla_cases (case_id, organisation_id, category, status, "
            "opened_at, version) VALUES (%s, %s, %s, 'open', %s, 1)",
            (clock.case_id, ORGANISATION, CATEGORY, clock.started_at),
        )
    with conn.cursor() as cursor:
        store.save_clocks(cursor, [(clock, CATEGORY) for clock in stored])


def expected(stored: list[Clock], orphan: str | None) -> tuple[dict[Any, Clock], list[Transition]]:
    after: dict[Any, Clock] = {}
    made: list[Transition] = []
    for clock in stored:
        moved = [] if clock.case_id == orphan else advance(clock, NOW)
        after[(clock.case_id, clock.metric)] = last(clock, moved)
        made.extend(moved)
    return after, made


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stored=clock_sets(), orphaned=st.booleans(), zone=st.sampled_from(["UTC", "Asia/Shanghai"]))
def test_the_timer_statement_makes_what_the_clock_rule_makes(
    database: Database, stored: list[Clock], orphaned: bool, zone: str
) -> None:
    orphan = stored[0].case_id if orphaned else None
    with psycopg.connect(database.url, autocommit=True) as conn:
        # The payload's instants must not depend on the session's time zone.
        conn.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
        store_clocks(conn, stored, orphan)
        made = SlaTimer(database.url, clock=lambda: NOW).tick(conn)

        after, transitions = expected(stored, orphan)
        assert made == len(transitions)
        for row in conn.execute(
            f"SELECT {store.CLOCK_COLUMNS}, next_due_at FROM casebook_sla_clocks"
        ).fetchall():
            clock = store.clock_from_row(row)
            want = after[(clock.case_id, clock.metric)]
            assert clock == want
            assert row[-1] == want.next_due_at

        history = conn.execute(
            "SELECT event_id, case_id::text, metric, change, at, reason, state, severity, "
            "policy_version, deadline, at_risk_at FROM casebook_sla_clock_history"
        ).fetchall()
        assert sorted(history) == sorted(
            (
                t.event_id, t.clock.case_id, t.clock.metric.value, t.change.value, t.at,
                t.reason, t.clock.state.value, t.clock.severity, t.clock.policy_version,
                t.clock.deadline, t.clock.at_risk_at,
            )
            for t in transitions
        )  # fmt: skip

        outbox = conn.execute(
            "SELECT event_id, type, subject, time, payload FROM casebook_sla_outbox ORDER BY id"
        ).fetchall()
        rows = [outbox_row(t, ORGANISATION, CATEGORY) for t in transitions]
        assert sorted(outbox) == sorted((*row[:4], json.loads(row[4])) for row in rows)
        published = [event_id for event_id, *_ in outbox]
        for one, two in itertools.pairwise(transitions):
            if one.clock.case_id == two.clock.case_id and one.clock.metric == two.clock.metric:
                assert published.index(one.event_id) < published.index(two.event_id)
