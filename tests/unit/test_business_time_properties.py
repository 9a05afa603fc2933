"""Properties of business-time arithmetic over random calendars and instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendars import BusinessCalendar, DayRule, HolidaySource
from domain.sla import deadline, elapsed

ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Warsaw",
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour DST shifts
    "America/Sao_Paulo",
]
COUNTRIES = [None, "CN", "PL", "US", "GB"]


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    opens = draw(st.integers(min_value=0, max_value=23 * 60))
    closes = draw(st.integers(min_value=opens + 15, max_value=24 * 60))
    country = draw(st.sampled_from(COUNTRIES))
    days = draw(st.sampled_from(list(DayRule)))
    return BusinessCalendar(
        name="random",
        timezone=ZoneInfo(draw(st.sampled_from(ZONES))),
        opens_minute=opens,
        closes_minute=closes,
        days=days,
        holidays=HolidaySource(country) if country else None,
        require_official_schedule=country == "CN" and draw(st.booleans()),
    )


instants = st.datetimes(
    min_value=datetime(2019, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=12))


@settings(max_examples=300, deadline=None)
@given(calendars(), instants, durations)
def test_elapsed_until_the_deadline_equals_the_target(
    calendar: BusinessCalendar, start: datetime, target: timedelta
) -> None:
    assert elapsed(start, deadline(start, target, calendar).at, calendar) == target


@settings(max_examples=200, deadline=None)
@given(
    calendars(),
    instants,
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
    durations,
)
def test_later_starts_never_give_earlier_deadlines(
    calendar: BusinessCalendar, start: datetime, shift: timedelta, target: timedelta
) -> None:
    assert deadline(start, target, calendar).at <= deadline(start + shift, target, calendar).at


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, durations, durations)
def test_longer_targets_never_give_earlier_deadlines(
    calendar: BusinessCalendar, start: datetime, shorter: timedelta, extra: timedelta
) -> None:
    assert deadline(start, shorter, calendar).at <= deadline(start, shorter + extra, calendar).at


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, durations, durations)
def test_adding_durations_is_additive(
    calendar: BusinessCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    halfway = deadline(start, first, calendar).at
    assert deadline(halfway, second, calendar).at == deadline(start, first + second, calendar).at


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)))
def test_elapsed_never_exceeds_wall_time(
    calendar: BusinessCalendar, start: datetime, span: timedelta
) -> None:
    assert timedelta(0) <= elapsed(start, start + span, calendar) <= span
