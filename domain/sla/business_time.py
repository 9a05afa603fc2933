"""Business-time arithmetic over a calendar: deadlines, elapsed time, explanations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from domain.calendars.calendar import BusinessCalendar, ClosedDay, OpenWindow, as_utc
from domain.errors import DomainError

ZERO = timedelta(0)


class NegativeDuration(DomainError):
    """Business durations and intervals must not run backwards."""

    rule = "durations-are-not-negative"


@dataclass(frozen=True)
class Deadline:
    """When a business-time target falls due.

    `provisional_years` lists the years whose holiday schedule the library only
    estimates (the government has not published it yet): such a deadline may move.
    """

    at: datetime
    provisional_years: frozenset[int] = frozenset()

    @property
    def is_provisional(self) -> bool:
        return bool(self.provisional_years)


@dataclass(frozen=True)
class CountedSpan:
    """A stretch of business time that counted towards the deadline (UTC instants)."""

    day: date
    start: datetime
    end: datetime
    makeup_workday: bool = False

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class DeadlineExplanation:
    """Why a deadline is what it is: the time counted and the days skipped."""

    calendar: str
    start: datetime
    target: timedelta
    deadline: Deadline
    spans: tuple[CountedSpan, ...]
    skipped_days: tuple[ClosedDay, ...] = field(default_factory=tuple)


def deadline(start: datetime, target: timedelta, calendar: BusinessCalendar) -> Deadline:
    """The instant at which `target` business time has passed since `start`.

    A target that ends exactly at closing time falls due at closing, not at the next
    opening: a deadline never lies in closed time unless the target is zero.
    """
    return explain(start, target, calendar, keep_details=False).deadline


def elapsed(start: datetime, end: datetime, calendar: BusinessCalendar) -> timedelta:
    """Business time between two instants."""
    start, end = as_utc(start), as_utc(end)
    if end < start:
        raise NegativeDuration(f"interval ends ({end}) before it starts ({start})")
    total = ZERO
    for window in calendar.windows(start):
        if window.start >= end:
            break
        total += min(window.end, end) - window.start
    return total


def explain(
    start: datetime,
    target: timedelta,
    calendar: BusinessCalendar,
    *,
    keep_details: bool = True,
) -> DeadlineExplanation:
    """Compute a deadline and, unless told not to, record every span counted."""
    if target < ZERO:
        raise NegativeDuration(f"target {target} is negative")
    start_utc = as_utc(start)
    spans: list[CountedSpan] = []
    skipped: list[ClosedDay] = []
    provisional: set[int] = set()
    remaining = target
    due = start_utc
    if remaining > ZERO:
        for item in calendar.walk(start_utc):
            _note_schedule(calendar, item.day, provisional)
            if isinstance(item, ClosedDay):
                if keep_details:
                    skipped.append(item)
                continue
            counted = min(remaining, item.length)
            due = item.start + counted
            if keep_details:
                spans.append(_span(item, due))
            remaining -= counted
            if remaining == ZERO:
                break
    result = Deadline(due.astimezone(start.tzinfo), frozenset(provisional))
    return DeadlineExplanation(
        calendar=calendar.name,
        start=start,
        target=target,
        deadline=result,
        spans=_merge_touching(spans),
        skipped_days=tuple(skipped),
    )


def _span(window: OpenWindow, end: datetime) -> CountedSpan:
    return CountedSpan(window.day, window.start, end, window.makeup_workday)


def _note_schedule(calendar: BusinessCalendar, day: date, provisional: set[int]) -> None:
    if not calendar.require_official_schedule or calendar.holidays is None:
        return
    if day.year not in provisional and not calendar.holidays.has_official_schedule(day.year):
        provisional.add(day.year)


def _merge_touching(spans: list[CountedSpan]) -> tuple[CountedSpan, ...]:
    """Join spans that meet end to start (a 24x7 calendar is one span, not one a day)."""
    merged: list[CountedSpan] = []
    for span in spans:
        if merged and merged[-1].end == span.start and not span.makeup_workday:
            previous = merged[-1]
            merged[-1] = CountedSpan(
                previous.day, previous.start, span.end, previous.makeup_workday
            )
        else:
            merged.append(span)
    return tuple(merged)
