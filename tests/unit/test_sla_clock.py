"""The one SLA clock model: running, at risk, breached, met, stopped, and recomputes (§7)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.calendars import BusinessCalendar, HolidaySource
from domain.calendars.calendar import CalendarError
from domain.calendars.holidays import UnknownCountry
from domain.errors import NaiveTimestamp
from domain.policy import Policy
from domain.sla import (
    Change,
    Clock,
    Metric,
    NegativeDuration,
    State,
    Transition,
    advance,
    deadline,
    elapsed,
    finish,
    initial_response_target,
    last,
    recompute,
    start,
    time_left,
)
from domain.values import Category, Severity

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2025, 1, 20, 10, tzinfo=SHANGHAI)
CASE = "case-1"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 1, day, hour, minute, tzinfo=SHANGHAI)


def changes(transitions: list[Transition]) -> list[tuple[Change, datetime]]:
    return [(t.change, t.at) for t in transitions]


def opened_monday(policy: Policy, severity: Severity) -> Clock:
    """A technical case's initial-response clock, opened and assigned Monday 10:00."""
    target = initial_response_target(policy, Category.TECHNICAL, severity)
    started = start(
        CASE,
        Metric.INITIAL_RESPONSE,
        severity.value,
        MONDAY_10,
        target,
        calendar=policy.target(Category.TECHNICAL, severity).calendar,
        policy_version=policy.version,
        at=MONDAY_10,
        reason=f"severity {severity.value} assigned",
    )
    assert changes(started) == [(Change.STARTED, MONDAY_10)]
    return started[-1].clock


def retarget(policy: Policy, clock: Clock, severity: Severity, now: datetime) -> list[Transition]:
    target = initial_response_target(policy, Category.TECHNICAL, severity)
    calendar = policy.target(Category.TECHNICAL, severity).calendar
    return recompute(clock, severity.value, target, calendar=calendar, at=now, reason="changed")


def test_clock_runs_until_eighty_percent_of_business_time_is_used(default_policy: Policy) -> None:
    # 15 business hours from Monday 10:00 on 09:00-24:00; 80 % = 12 h -> Monday 22:00.
    clock = opened_monday(default_policy, Severity.B)
    assert clock.state is State.RUNNING
    assert (clock.at_risk_at, clock.deadline) == (at(20, 22), at(21, 10))
    assert clock.next_due_at == at(20, 22)
    assert advance(clock, at(20, 21, 59)) == []


def test_clock_is_at_risk_from_eighty_percent(default_policy: Policy) -> None:
    clock = opened_monday(default_policy, Severity.B)
    moved = advance(clock, at(20, 22))
    assert changes(moved) == [(Change.AT_RISK, at(20, 22))]
    assert last(clock, moved).state is State.AT_RISK
    assert last(clock, moved).next_due_at == at(21, 10)


def test_time_alone_breaches_the_clock_at_its_deadline_even_when_noticed_late(
    default_policy: Policy,
) -> None:
    clock = opened_monday(default_policy, Severity.B)
    # Noticed days late (downtime): the transitions keep their own instants.
    moved = advance(clock, at(25, 12))
    assert changes(moved) == [(Change.AT_RISK, at(20, 22)), (Change.BREACHED, at(21, 10))]
    breached = last(clock, moved)
    assert breached.state is State.BREACHED and breached.breached_at == at(21, 10)
    assert breached.next_due_at is None and breached.open_deadline == at(21, 10)


def test_time_left_pauses_outside_support_hours_and_goes_negative_once_overdue(
    default_policy: Policy,
) -> None:
    calendar = initial_response_target(default_policy, Category.TECHNICAL, Severity.B).calendar
    due = opened_monday(default_policy, Severity.B).deadline
    assert due is not None
    assert time_left(due, at(20, 21, 59), calendar) == timedelta(hours=3, minutes=1)
    assert time_left(due, at(21, 0), calendar) == timedelta(hours=1)
    assert time_left(due, at(21, 8, 59), calendar) == timedelta(hours=1)
    assert time_left(due, at(21, 11), calendar) == -timedelta(hours=1)


def test_response_before_the_deadline_meets_the_target(default_policy: Policy) -> None:
    clock = opened_monday(default_policy, Severity.B)
    stopped = finish(clock, at(21, 9, 30), "first response", meets=True)
    assert changes(stopped) == [(Change.AT_RISK, at(20, 22)), (Change.MET, at(21, 9, 30))]
    met = last(clock, stopped)
    assert met.state is State.MET and met.breached_at is None
    assert met.is_finished and met.open_deadline is None


def test_response_after_the_deadline_stays_breached(default_policy: Policy) -> None:
    clock = opened_monday(default_policy, Severity.B)
    stopped = finish(clock, at(21, 11), "first response", meets=True)
    assert changes(stopped) == [
        (Change.AT_RISK, at(20, 22)),
        (Change.BREACHED, at(21, 10)),
        (Change.STOPPED, at(21, 11)),
    ]
    answered = last(clock, stopped)
    assert answered.state is State.BREACHED and answered.breached_at == at(21, 10)
    assert answered.stopped_at == at(21, 11) and answered.is_finished


def test_an_in_time_response_that_arrives_after_the_breach_was_marked_meets_the_target(
    default_policy: Policy,
) -> None:
    clock = opened_monday(default_policy, Severity.B)
    # The timer ran ahead of a lagging consumer and marked the breach...
    marked = last(clock, advance(clock, at(21, 10) + timedelta(seconds=1)))
    # ...but the response was recorded a second before the deadline.
    answered = at(21, 10) - timedelta(seconds=1)
    stopped = finish(marked, answered, "first response", meets=True)
    assert changes(stopped) == [(Change.MET, answered)]
    assert last(marked, stopped).state is State.MET
    assert last(marked, stopped).breached_at is None


def test_a_clock_ended_without_meeting_its_target_is_stopped_not_met(
    default_policy: Policy,
) -> None:
    clock = opened_monday(default_policy, Severity.B)
    stopped = finish(clock, at(20, 12), "resolved", meets=False)
    assert changes(stopped) == [(Change.STOPPED, at(20, 12))]
    assert last(clock, stopped).state is State.STOPPED


def test_escalation_recomputes_from_the_original_opening_and_can_breach_at_once(
    default_policy: Policy,
) -> None:
    # Opened C on Monday 10:00, escalated to A at 12:30: A's hour ran out at 11:00.
    as_c = opened_monday(default_policy, Severity.C)
    escalated = retarget(default_policy, as_c, Severity.A, at(20, 12, 30))
    assert changes(escalated) == [
        (Change.RECOMPUTED, at(20, 12, 30)),
        (Change.AT_RISK, at(20, 10, 48)),
        (Change.BREACHED, at(20, 11)),
    ]
    assert last(as_c, escalated).breached_at == at(20, 11)


def test_downgrade_recomputes_from_the_original_opening_and_lifts_the_breach(
    default_policy: Policy,
) -> None:
    as_b = opened_monday(default_policy, Severity.B)
    breached = last(as_b, advance(as_b, at(21, 12)))
    assert breached.state is State.BREACHED
    downgraded = retarget(default_policy, breached, Severity.C, at(21, 12))
    assert changes(downgraded) == [(Change.RECOMPUTED, at(21, 12))]
    clock = last(breached, downgraded)
    assert clock.state is State.RUNNING and clock.breached_at is None
    assert clock.deadline == at(23, 10)


def test_every_resolved_target_records_the_policy_version(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.BILLING, Severity.B)
    assert target.policy_version == default_policy.version


def test_naive_timestamps_are_refused(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.A)
    with pytest.raises(NaiveTimestamp, match="no UTC offset") as refused:
        deadline(datetime(2025, 1, 20, 10), target.length, target.calendar)
    assert refused.value.rule == "timestamps-are-timezone-aware"


def test_negative_targets_and_backward_intervals_are_refused(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.A)
    with pytest.raises(NegativeDuration, match="negative"):
        deadline(MONDAY_10, -timedelta(hours=1), target.calendar)
    with pytest.raises(NegativeDuration, match="before it starts"):
        elapsed(MONDAY_10, MONDAY_10 - timedelta(seconds=1), target.calendar)


def test_a_local_day_with_a_dst_change_counts_its_real_length() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    all_day = BusinessCalendar("warsaw-all-day", warsaw, opens_minute=0, closes_minute=24 * 60)
    spring_sunday = datetime(2025, 3, 30, tzinfo=warsaw)
    autumn_sunday = datetime(2025, 10, 26, tzinfo=warsaw)
    assert elapsed(spring_sunday, datetime(2025, 3, 31, tzinfo=warsaw), all_day) == timedelta(
        hours=23
    )
    assert elapsed(autumn_sunday, datetime(2025, 10, 27, tzinfo=warsaw), all_day) == timedelta(
        hours=25
    )
    # 24 business hours from Saturday noon end at Sunday 13:00 local in spring.
    saturday_noon = datetime(2025, 3, 29, 12, tzinfo=warsaw)
    due = deadline(saturday_noon, timedelta(hours=24), all_day).at
    assert due.astimezone(warsaw) == datetime(2025, 3, 30, 13, tzinfo=warsaw)


def test_a_calendar_must_open_before_it_closes() -> None:
    with pytest.raises(CalendarError, match="opens < closes") as refused:
        BusinessCalendar("backwards", SHANGHAI, opens_minute=18 * 60, closes_minute=9 * 60)
    assert refused.value.rule == "calendar-has-business-time"


def test_a_calendar_closed_on_every_day_reports_it_instead_of_looping() -> None:
    # One minute a day for 20 years holds about 5 days of business time: asking for 10
    # must end with a clear error, not an endless search.
    calendar = BusinessCalendar("short", SHANGHAI, opens_minute=9 * 60, closes_minute=9 * 60 + 1)
    with pytest.raises(CalendarError, match="no business time within"):
        deadline(MONDAY_10, timedelta(days=10), calendar)


def test_an_unknown_holiday_country_is_refused() -> None:
    with pytest.raises(UnknownCountry, match="'XX'") as refused:
        HolidaySource("XX")
    assert refused.value.rule == "known-holiday-country"
