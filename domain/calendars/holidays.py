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
from holidays.version import __version__ as holidays_version

from domain.errors import DomainError


class UnknownCountry(DomainError):
    """The holiday library has no calendar for this country code."""

    rule = "known-holiday-country"


@dataclass(frozen=True)
class DayKind:
    """What one date is in a country's calendar."""

    holiday_name: str | None
    is_makeup_workday: bool


# Countries whose public holidays and make-up working days are set by a schedule the
# government publishes each year (the library's later years are estimates), by the codes
# the library accepts for them.
YEARLY_SCHEDULE_COUNTRIES = frozenset({"CN", "CHN"})

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
        """True for countries whose holidays are announced year by year (China).

        An explicit list, not the library's `special_public_holidays`: that also holds
        one-off holidays of countries with fixed calendars (the United States' of 1795),
        which would flag every US deadline provisional.
        """
        return self.country.upper() in YEARLY_SCHEDULE_COUNTRIES

    @property
    def data_version(self) -> str:
        """Which holiday data answered: the `holidays` release installed."""
        return f"holidays {holidays_version}"


def _published_years(code: str) -> frozenset[int]:
    published = getattr(_country(code), "special_public_holidays", None) or {}
    return frozenset(published)
