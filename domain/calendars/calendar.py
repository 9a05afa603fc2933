"""A business calendar: daily support hours in a time zone, on the days that count.

All arithmetic happens on UTC instants, because subtracting two aware datetimes that
share a zoneinfo ignores a DST change between them. Local wall-clock times are used
only to place each day's window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.calendars.holidays import HolidaySource
from domain.errors import DomainError, NaiveTimestamp

MINUTES_PER_DAY = 24 * 60
# A calendar open at least one day a year never needs longer than this to find time.
MAX_DAYS_SCANNED = 366 * 20


class CalendarError(DomainError):
    """A calendar cannot answer: it is misconfigured or never opens."""

    rule = "calendar-has-business-time"


class DayRule(StrEnum):
    """Which days the calendar opens before holidays are applied."""

    EVERY_DAY = "every_day"
    WEEKDAYS = "weekdays"


@dataclass(frozen=True)
class OpenWindow:
    """Business time counted on one local day, as UTC instants."""

    day: date
    start: datetime
    end: datetime
    makeup_workday: bool

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class ClosedDay:
    """A local day on which the calendar did not open, and why."""

    day: date
    reason: str


@dataclass(frozen=True)
class BusinessCalendar:
    """Support hours `opens`..`closes` (minutes after local midnight) on `days`."""

    name: str
    timezone: ZoneInfo
    opens_minute: int
    closes_minute: int
    days: DayRule = DayRule.EVERY_DAY
    holidays: HolidaySource | None = None
    require_official_schedule: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.opens_minute < self.closes_minute <= MINUTES_PER_DAY:
            raise CalendarError(
                f"calendar {self.name!r}: opening hours must satisfy "
                "00:00 <= opens < closes <= 24:00"
            )
        if self.require_official_schedule and self.holidays is None:
            raise CalendarError(
                f"calendar {self.name!r}: require_official_schedule needs a holiday country"
            )

    @property
    def is_continuous(self) -> bool:
        """Open around the clock on every day (24x7)."""
        return (
            self.days is DayRule.EVERY_DAY
            and self.holidays is None
            and self.opens_minute == 0
            and self.closes_minute == MINUTES_PER_DAY
        )

    @property
    def nominal_day_length(self) -> timedelta:
        """One full support day of this calendar (policy §7.1)."""
        return timedelta(minutes=self.closes_minute - self.opens_minute)

    def closed_reason(self, day: date) -> str | None:
        """Why the calendar is closed on `day`, or None when it opens."""
        kind = self.holidays.day_kind(day) if self.holidays else None
        if kind and kind.holiday_name:
            return f"public holiday: {kind.holiday_name}"
        if self.days is DayRule.WEEKDAYS and day.weekday() >= 5:
            if kind and kind.is_makeup_workday:
                return None
            return "weekend"
        return None

    def is_makeup_workday(self, day: date) -> bool:
        """A weekend day worked by official decree (make-up working day)."""
        if self.holidays is None or self.days is not DayRule.WEEKDAYS:
            return False
        return day.weekday() >= 5 and self.holidays.day_kind(day).is_makeup_workday

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The UTC instants at which `day`'s support hours open and close."""
        return self._instant(day, self.opens_minute), self._instant(day, self.closes_minute)

    def _instant(self, day: date, minute: int) -> datetime:
        if minute == MINUTES_PER_DAY:
            day, minute = day + timedelta(days=1), 0
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.timezone)
        return local.astimezone(UTC)

    def walk(self, start: datetime) -> Iterator[OpenWindow | ClosedDay]:
        """Each local day from `start` on: its open window (clipped) or why it is closed.

        Cost is one step per calendar day, whatever the duration in minutes.
        """
        start = as_utc(start)
        first_day = start.astimezone(self.timezone).date()
        for offset in range(MAX_DAYS_SCANNED):
            day = first_day + timedelta(days=offset)
            reason = self.closed_reason(day)
            if reason is not None:
                yield ClosedDay(day, reason)
                continue
            opens, closes = self.window(day)
            if closes <= start or closes <= opens:
                continue
            yield OpenWindow(day, max(opens, start), closes, self.is_makeup_workday(day))
        raise CalendarError(
            f"calendar {self.name!r} has no business time within {MAX_DAYS_SCANNED} days"
        )

    def windows(self, start: datetime) -> Iterator[OpenWindow]:
        """Only the open windows of `walk`."""
        for item in self.walk(start):
            if isinstance(item, OpenWindow):
                yield item


def as_utc(instant: datetime) -> datetime:
    """The same instant in UTC; refuses naive datetimes."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise NaiveTimestamp(f"timestamp {instant.isoformat()} has no UTC offset")
    return instant.astimezone(UTC)
