"""Business-time arithmetic over a calendar: deadlines, elapsed time, explanations."""

from __future__ import annotations

import hashlib
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
    # Which data answered ("holidays 0.109", "none" without holidays) and a SHA-256 of
    # the calendar facts consulted (`calendar_facts`); empty when details were not kept.
    calendar_source: str = ""
    data_sha256: str = ""


@dataclass(frozen=True)
class DeadlineProof:
    """What proves a deadline: the policy version it was decided under and the
    computation itself (spans, skipped days, provisional years, data source and hash),
    recorded when the deadline is set so that it can be re-proven later."""

    policy_version: str
    explanation: DeadlineExplanation


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
    facts: list[str] = []
    remaining = target
    due = start_utc
    if remaining > ZERO:
        for item in calendar.walk(start_utc):
            _note_schedule(calendar, item.day, provisional)
            if keep_details:
                facts.append(_fact(item))
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
        calendar_source=calendar.holidays.data_version if calendar.holidays else "none",
        data_sha256=_sha256(calendar, facts, provisional) if keep_details else "",
    )


def calendar_facts(calendar: BusinessCalendar) -> str:
    """The calendar's own definition, as it enters the data hash."""
    country = calendar.holidays.country if calendar.holidays else "-"
    return (
        f"calendar {calendar.name} zone {calendar.timezone.key} "
        f"minutes {calendar.opens_minute}-{calendar.closes_minute} days {calendar.days.value} "
        f"holidays {country} official-required {calendar.require_official_schedule}"
    )


def _fact(item: OpenWindow | ClosedDay) -> str:
    """One walked day as it decided the count: open (UTC window, make-up day) or closed
    (holiday or weekend). Holiday names stay out: a library renaming a holiday moves no
    deadline."""
    if isinstance(item, ClosedDay):
        kind = "holiday" if item.reason.startswith("public holiday") else "weekend"
        return f"{item.day.isoformat()} closed {kind}"
    makeup = " make-up" if item.makeup_workday else ""
    return f"{item.day.isoformat()} open {item.start.isoformat()} {item.end.isoformat()}{makeup}"


def _sha256(calendar: BusinessCalendar, facts: list[str], provisional: set[int]) -> str:
    estimated = ",".join(str(year) for year in sorted(provisional)) or "-"
    lines = [calendar_facts(calendar), f"estimated years {estimated}", *facts]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _span(window: OpenWindow, end: datetime) -> CountedSpan:
    return CountedSpan(window.day, window.start, end, window.makeup_workday)


def _note_schedule(calendar: BusinessCalendar, day: date, provisional: set[int]) -> None:
    """A year without an official schedule makes the deadline provisional, in every
    calendar whose holidays come from a country publishing yearly schedules (a presales
    customer's China included), and wherever the policy requires an official one."""
    source = calendar.holidays
    if source is None:
        return
    if not (calendar.require_official_schedule or source.publishes_yearly_schedule):
        return
    if day.year not in provisional and not source.has_official_schedule(day.year):
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
