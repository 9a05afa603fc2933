"""The SLA tracker's clocks, driven by case events as they arrive from the topic (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casebook.policy_source import default_policy_text
from domain.policy import Policy, parse_policy
from domain.sla import Change, Metric, State, triage_severity
from domain.values import Agreement, Category, Severity
from projections.sla.cases import CaseView, Tracker
from projections.sla.targets import Locale, TargetBook, UnknownPolicyVersion

CASE, ORG = "case-1", "org-1"
# Monday 2025-03-03 10:00 Shanghai = 02:00 UTC; B/C support runs 09:00-24:00 Shanghai.
OPENED = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
AGENT = {"principal_id": "bob", "role": "agent", "channel": "online"}

VERSION = parse_policy(default_policy_text(), source="test").version  # in force


def at(**delta: float) -> datetime:
    return OPENED + timedelta(**delta)


def data(when: datetime, **fields: Any) -> dict[str, Any]:
    return {"at": when.isoformat(), "policy_version": VERSION, "by": AGENT, **fields}


class Case:
    """One case fed event by event through a tracker, as the projection does."""

    def __init__(self, book: TargetBook, category: str = "technical", **locales: Locale) -> None:
        self.tracker = Tracker(book, dict(locales))
        self.view: CaseView | None = None
        self.sequence = 0
        self.event("opened", OPENED, organisation_id=ORG, category=category)

    def event(self, name: str, when: datetime, **fields: Any) -> list[tuple[Change, datetime]]:
        before = len(self.tracker.transitions)
        self.sequence += 1
        self.view = self.tracker.apply(self.view, CASE, name, data(when, **fields), self.sequence)
        return [(t.change, t.at) for t in self.tracker.transitions[before:]]

    def clock(self, metric: Metric = Metric.INITIAL_RESPONSE) -> Any:
        assert self.view is not None
        return self.view.clocks[metric]


@pytest.fixture(scope="module")
def book(default_policy: Policy) -> TargetBook:
    return TargetBook([default_policy])


def test_severity_recomputes_the_initial_response_clock_from_the_opening(
    book: TargetBook,
) -> None:
    case = Case(book)
    changes = case.event("severity_assigned", at(hours=2), severity="B", agreement="standard")
    clock = case.clock()
    # The triage clock started at the opening; the assessment recomputes it (docs/sla.md).
    assert changes == [(Change.RECOMPUTED, at(hours=2))]
    assert clock.assessed
    assert clock.started_at == OPENED
    # 1 business day = 15 h of 09:00-24:00 Shanghai, counted from 10:00: 02:00 UTC next day.
    assert clock.deadline == datetime(2025, 3, 4, 2, 0, tzinfo=UTC)
    assert clock.at_risk_at == OPENED + timedelta(hours=12)
    assert case.view is not None and case.view.due_at == clock.deadline


def test_first_response_before_the_deadline_meets_the_target(book: TargetBook) -> None:
    case = Case(book)
    case.event("severity_assigned", at(minutes=1), severity="C", agreement="standard")
    changes = case.event("responded", at(hours=3), first_response=True, message_summary="")
    assert changes == [(Change.MET, at(hours=3))]
    assert case.clock().state is State.MET
    assert case.view is not None and case.view.due_at is None


def test_escalation_recomputes_the_initial_response_clock_under_the_new_severity(
    book: TargetBook,
) -> None:
    case = Case(book)
    case.event("severity_assigned", at(minutes=1), severity="B", agreement="advanced")
    changes = case.event(
        "escalated", at(hours=2), severity="A", previous_severity="B", reason="", agreement="x"
    )
    # A: 1 hour 24x7 from the opening (the clock model's recompute does the rest).
    assert changes[0] == (Change.RECOMPUTED, at(hours=2))
    assert case.tracker.transitions[-len(changes)].reason == "escalated: B -> A"
    assert (case.clock().severity, case.clock().deadline) == ("A", at(hours=1))


def test_first_response_exactly_at_the_deadline_meets_the_target_after_the_breach_is_marked(
    book: TargetBook,
) -> None:
    case = Case(book)
    case.event("severity_assigned", at(minutes=1), severity="B", agreement="standard")
    deadline = case.clock().deadline
    changes = case.event("responded", deadline, first_response=True, message_summary="")
    # The tracker advances the clock to the event's time first, which breaches it at the
    # deadline; the in-time response then lifts the breach (the clock's lag rule).
    assert changes == [
        (Change.AT_RISK, case.clock().at_risk_at),
        (Change.BREACHED, deadline),
        (Change.MET, deadline),
    ]
    assert case.clock().state is State.MET and case.clock().breached_at is None


def test_downgrade_lifts_a_breach_the_stricter_target_caused(book: TargetBook) -> None:
    case = Case(book)
    case.event("severity_assigned", at(minutes=1), severity="A", agreement="advanced")
    case.event("customer_unresponsive", at(minutes=30), requested="logs", asked_at=at(minutes=5))
    changes = case.event(
        "downgraded",
        at(hours=3),
        severity="B",
        previous_severity="A",
        reason="",
        evidence_version=3,
        evidence_requested="logs",
        evidence_asked_at=at(minutes=5),
    )
    assert [c for c, _ in changes] == [
        Change.AT_RISK,
        Change.BREACHED,
        Change.RECOMPUTED,
    ]
    clock = case.clock()
    assert clock.state is State.RUNNING and clock.breached_at is None
    assert clock.deadline == datetime(2025, 3, 4, 2, 0, tzinfo=UTC)
    assert "downgraded" in case.tracker.transitions[-1].reason
    assert case.view is not None and case.view.unresponsive_since is None


def test_presales_clock_waits_for_the_customer_locale_then_counts_their_hours(
    book: TargetBook,
) -> None:
    case = Case(book, category="presales")
    changes = case.event("severity_assigned", at(minutes=1), severity="C", agreement="standard")
    assert changes == [(Change.RECOMPUTED, at(minutes=1))]
    assert case.clock().deadline is None
    assert "waiting for the customer's locale" in case.tracker.transitions[-1].reason
    assert case.view is not None
    case.tracker.locales = {ORG: Locale(timezone="Europe/Warsaw", country="PL")}
    case.tracker.relocate(case.view, at(minutes=5), "customer locale known")
    # Opened Monday 03:00 Warsaw: 3 business days of 9 h end Wednesday 18:00 Warsaw.
    assert case.clock().deadline == datetime(2025, 3, 5, 17, 0, tzinfo=UTC)


def test_resolving_stops_the_follow_up_cadence(default_policy: Policy) -> None:
    text = default_policy_text().replace(
        'targets.A = { initial_response = { hours = 1 }, calendar = "continuous" }',
        'targets.A = { initial_response = { hours = 1 }, calendar = "continuous", '
        "follow_up_cadence = { hours = 4 } }",
    )
    case = Case(TargetBook([parse_policy(text, source="test")]))
    case.event("severity_assigned", at(minutes=1), severity="A", agreement="advanced")
    case.event("responded", at(minutes=30), first_response=True, message_summary="")
    first = case.clock(Metric.FOLLOW_UP)
    assert (first.started_at, first.deadline) == (at(minutes=30), at(hours=4, minutes=30))
    case.event("responded", at(hours=2), first_response=False, message_summary="")
    second = case.clock(Metric.FOLLOW_UP)
    assert second.deadline == at(hours=6) and second.transitions > first.transitions
    case.event("resolved", at(hours=3), resolution="fixed")
    assert case.clock(Metric.FOLLOW_UP).state is State.MET
    assert case.view is not None and case.view.due_at is None


def test_an_unknown_policy_version_is_refused_by_name(book: TargetBook) -> None:
    case = Case(book)
    with pytest.raises(UnknownPolicyVersion, match=r"'1999\.9'"):
        case.event(
            "severity_assigned",
            at(minutes=1),
            severity="B",
            agreement="standard",
            policy_version="1999.9",
        )


def test_transition_ids_are_stable_and_distinct(book: TargetBook) -> None:
    case = Case(book)
    case.event("severity_assigned", at(minutes=1), severity="B", agreement="standard")
    case.event("responded", at(days=2), first_response=True, message_summary="")
    ids = [t.event_id for t in case.tracker.transitions]
    assert ids == [f"{CASE}:initial_response:{n}" for n in range(1, 6)]


def test_a_presales_clock_counts_the_hours_of_the_locale_recorded_at_opening(
    book: TargetBook,
) -> None:
    tracker = Tracker(book, {ORG: Locale(timezone="Asia/Tokyo", country="JP")})
    opened = {"organisation_id": ORG, "category": "presales"}
    where = {"customer_timezone": "Europe/Warsaw", "customer_country": "PL"}
    view = tracker.apply(None, CASE, "opened", data(OPENED, **opened, **where), 1)
    view = tracker.apply(
        view, CASE, "severity_assigned", data(at(minutes=1), severity="C", agreement="x"), 2
    )
    assert view is not None
    # Warsaw's hours, not the organisation's current Tokyo ones: Wednesday 18:00 Warsaw.
    assert view.clocks[Metric.INITIAL_RESPONSE].deadline == datetime(2025, 3, 5, 17, 0, tzinfo=UTC)
    tracker.relocate(view, at(minutes=5), "customer locale changed")
    # Only the triage start and the assessment: the recorded locale stays.
    assert len(tracker.transitions) == 2


def test_an_unassessed_case_runs_on_the_triage_target_its_opening_records(
    book: TargetBook,
) -> None:
    tracker = Tracker(book, {})
    opened = data(OPENED, organisation_id=ORG, category="technical", triage_severity="A")
    view = tracker.apply(None, CASE, "opened", opened, 1)
    assert view is not None
    clock = view.clocks[Metric.INITIAL_RESPONSE]
    assert (clock.severity, clock.assessed, clock.deadline) == ("A", False, at(hours=1))
    assert view.due_at == at(hours=1) and view.severity is None
    # With no other event, the case turns at risk and breached at their instants.
    view = tracker.apply(view, CASE, "agent_assigned", data(at(hours=2), agent_id="bob"), 2)
    assert view is not None
    changes = [(t.change, t.at) for t in tracker.transitions]
    assert changes[1:] == [(Change.AT_RISK, at(minutes=48)), (Change.BREACHED, at(hours=1))]


@pytest.mark.parametrize(
    ("category", "agreement", "expected"),
    [
        (Category.TECHNICAL, Agreement.ADVANCED, Severity.A),
        (Category.BILLING, Agreement.ADVANCED, Severity.B),
        (Category.TECHNICAL, Agreement.STANDARD, Severity.B),
    ],
)
def test_the_triage_severity_is_the_strictest_the_policy_allows(
    default_policy: Policy, category: Category, agreement: Agreement, expected: Severity
) -> None:
    assert triage_severity(default_policy, category, agreement) is expected


def test_an_opening_recorded_before_triage_severities_runs_on_the_b_target(
    book: TargetBook,
) -> None:
    tracker = Tracker(book, {})
    opened = data(OPENED, organisation_id=ORG, category="technical")  # opened v1/v2
    view = tracker.apply(None, CASE, "opened", opened, 1)
    assert view is not None
    clock = view.clocks[Metric.INITIAL_RESPONSE]
    assert (clock.severity, clock.assessed) == ("B", False)


def test_assessing_recomputes_from_the_opening_and_lifts_a_triage_breach(
    book: TargetBook,
) -> None:
    tracker = Tracker(book, {})
    opened = data(OPENED, organisation_id=ORG, category="technical", triage_severity="A")
    view = tracker.apply(None, CASE, "opened", opened, 1)
    view = tracker.apply(
        view, CASE, "severity_assigned", data(at(hours=2), severity="C", agreement="advanced"), 2
    )
    assert view is not None
    clock = view.clocks[Metric.INITIAL_RESPONSE]
    # Breached at 1 h on the triage target A; C is 3 business days of 15 h from the opening.
    assert [t.change for t in tracker.transitions] == [
        Change.STARTED, Change.AT_RISK, Change.BREACHED, Change.RECOMPUTED,
    ]  # fmt: skip
    assert (clock.severity, clock.assessed, clock.state) == ("C", True, State.RUNNING)
    assert clock.started_at == OPENED and clock.breached_at is None
    assert clock.deadline == datetime(2025, 3, 6, 2, 0, tzinfo=UTC)


def test_the_first_response_keeps_its_business_time_on_the_clocks_calendar(
    book: TargetBook,
) -> None:
    case = Case(book)
    case.event("severity_assigned", at(minutes=1), severity="B", agreement="standard")
    assert case.view is not None and case.view.first_response_business_seconds is None
    # Opened Monday 10:00 Shanghai, answered Tuesday 10:00: 14 h on Monday, 1 on Tuesday.
    case.event("responded", at(hours=24), first_response=True, message_summary="")
    assert case.view.first_response_business_seconds == 15 * 3600
    # Later responses leave it alone.
    case.event("responded", at(hours=25), first_response=False, message_summary="")
    assert case.view.first_response_business_seconds == 15 * 3600


def test_an_opened_v4_payload_gives_the_view_its_promise(book: TargetBook) -> None:
    tracker = Tracker(book, {})
    promised = at(hours=6)
    opened = data(
        OPENED,
        organisation_id=ORG,
        category="technical",
        triage_severity="B",
        expected_response_at=promised.isoformat(),
    )
    view = tracker.apply(None, CASE, "opened", opened, 1)
    assert view is not None and view.promised_response_at == promised
