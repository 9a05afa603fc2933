"""Clock states over time: running, at risk, breached, met, and severity changes (§7)."""

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
    ClockState,
    NegativeDuration,
    deadline,
    elapsed,
    initial_response_target,
    read_clock,
)
from domain.values import Category, Severity

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2025, 1, 20, 10, tzinfo=SHANGHAI)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 1, day, hour, minute, tzinfo=SHANGHAI)


def test_clock_runs_until_eighty_percent_of_business_time_is_used(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.B)
    # 15 business hours from Monday 10:00; 80 % = 12 h -> Monday 22:00.
    reading = read_clock(target, MONDAY_10, now=at(20, 21, 59))
    assert reading.state is ClockState.RUNNING
    assert reading.at_risk_at == at(20, 22)
    assert reading.remaining == timedelta(hours=3, minutes=1)


def test_clock_is_at_risk_from_eighty_percent(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.B)
    reading = read_clock(target, MONDAY_10, now=at(20, 22))
    assert reading.state is ClockState.AT_RISK
    assert reading.remaining == timedelta(hours=3)


def test_remaining_time_pauses_outside_support_hours(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.B)
    at_midnight = read_clock(target, MONDAY_10, now=at(21, 0))
    before_opening = read_clock(target, MONDAY_10, now=at(21, 8, 59))
    assert at_midnight.remaining == before_opening.remaining == timedelta(hours=1)


def test_clock_is_breached_at_the_deadline_without_any_event(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.B)
    reading = read_clock(target, MONDAY_10, now=at(25, 12))
    assert reading.state is ClockState.BREACHED
    assert reading.breached_at == at(21, 10)
    assert reading.remaining == timedelta(0)


def test_response_before_the_deadline_meets_the_target(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.B)
    reading = read_clock(target, MONDAY_10, now=at(25, 12), stopped_at=at(21, 9, 30))
    assert reading.state is ClockState.MET
    assert reading.breached_at is None
    assert reading.used == timedelta(hours=14, minutes=30)


def test_response_after_the_deadline_stays_breached(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.B)
    reading = read_clock(target, MONDAY_10, now=at(25, 12), stopped_at=at(21, 11))
    assert reading.state is ClockState.BREACHED
    assert reading.breached_at == at(21, 10)


def test_response_exactly_at_the_deadline_meets_it(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.B)
    reading = read_clock(target, MONDAY_10, now=at(21, 10), stopped_at=at(21, 10))
    assert reading.state is ClockState.MET


def test_escalation_recomputes_from_the_original_opening_and_can_breach_at_once(
    default_policy: Policy,
) -> None:
    # Opened C on Monday 10:00, escalated to A at 12:30: A's hour ran out at 11:00.
    as_c = read_clock(
        initial_response_target(default_policy, Category.TECHNICAL, Severity.C),
        MONDAY_10,
        now=at(20, 12, 30),
    )
    as_a = read_clock(
        initial_response_target(default_policy, Category.TECHNICAL, Severity.A),
        MONDAY_10,
        now=at(20, 12, 30),
    )
    assert as_c.state is ClockState.RUNNING
    assert as_a.state is ClockState.BREACHED
    assert as_a.breached_at == at(20, 11)


def test_downgrade_recomputes_from_the_original_opening(default_policy: Policy) -> None:
    as_b = initial_response_target(default_policy, Category.TECHNICAL, Severity.B)
    as_c = initial_response_target(default_policy, Category.TECHNICAL, Severity.C)
    now = at(21, 12)
    assert read_clock(as_b, MONDAY_10, now).state is ClockState.BREACHED
    downgraded = read_clock(as_c, MONDAY_10, now)
    assert downgraded.state is ClockState.RUNNING
    assert downgraded.deadline.at == at(23, 10)


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
