"""Public holidays and official make-up working days from the `holidays` library.

Some countries (China above all) publish their holiday schedule year by year, moving
weekend days into working days. The library knows those official schedules only for
the years already announced; later years are estimates, which a deadline must flag.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import holidays

from domain.errors import DomainError


class UnknownCountry(DomainError):
    """The holiday library has no calendar for this country code."""

    rule = "known-holiday-country"


@dataclass(frozen=True)
class DayKind:
    """What one date is in a country's calendar."""

    holiday_name: str | None
    is_makeup_workday: bool


# The library fills years lazily into a shared dict; serialise that fill.
_lock = threading.Lock()


@cache
def _country(code: str) -> Any:
    try:
        return holidays.country_holidays(code)
    except NotImplementedError:
        raise UnknownCountry(f"no public-holiday calendar for country {code!r}") from None


@dataclass(frozen=True)
class HolidaySource:
    """A country's public holidays, make-up working days and official years."""

    country: str

    def __post_init__(self) -> None:
        _country(self.country)  # fail fast on an unknown code

    def day_kind(self, day: date) -> DayKind:
        """Holiday name (if any) and whether the day is an official make-up workday."""
        calendar = _country(self.country)
        with _lock:
            name = calendar.get(day)
            makeup = day in getattr(calendar, "weekend_workdays", ())
        return DayKind(holiday_name=name, is_makeup_workday=makeup)

    def has_official_schedule(self, year: int) -> bool:
        """True when the library holds the government's published schedule for `year`.

        Countries that publish per-year schedules list them in
        `special_public_holidays`; a year missing there is the library's estimate.
        """
        return year in _published_years(self.country)

    @property
    def publishes_yearly_schedule(self) -> bool:
        """True for countries whose holidays are announced year by year."""
        return bool(_published_years(self.country))


def _published_years(code: str) -> frozenset[int]:
    published = getattr(_country(code), "special_public_holidays", None) or {}
    return frozenset(published)
