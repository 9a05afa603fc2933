"""The support policy as validated data (support-policy.md §3-§5 and §7)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.calendars.calendar import BusinessCalendar, DayRule
from domain.calendars.holidays import HolidaySource, UnknownCountry
from domain.policy.lines import LineFor, SupportLineSpec, check_lines, line_for
from domain.values import Agreement, Category, ClosureReason, Severity

CUSTOMER = "customer"
_CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerLocale(_Strict):
    """Where the customer is: their IANA time zone and ISO country code."""

    timezone: str
    country: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        return _check_country(value.upper())


class CalendarSpec(_Strict):
    """Daily support hours, the days they apply to, and whose holidays close them."""

    description: str = ""
    timezone: str = Field(description=f"IANA zone, or {CUSTOMER!r} for the customer's own")
    opens: str = Field(pattern=_CLOCK.pattern)
    closes: str = Field(pattern=_CLOCK.pattern)
    days: DayRule = DayRule.EVERY_DAY
    holidays: str | None = Field(
        default=None, description=f"ISO country code, or {CUSTOMER!r} for the customer's"
    )
    require_official_schedule: bool = False

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return value if value == CUSTOMER else _check_zone(value)

    @model_validator(mode="after")
    def _hours_in_order(self) -> Self:
        if _minutes(self.opens) >= _minutes(self.closes):
            raise ValueError(f"opens ({self.opens}) must be before closes ({self.closes})")
        if self.holidays not in (None, CUSTOMER):
            _check_country(self.holidays)
        if self.require_official_schedule and self.holidays is None:
            raise ValueError("require_official_schedule needs a holidays country")
        return self

    @property
    def depends_on_customer(self) -> bool:
        return CUSTOMER in (self.timezone, self.holidays)

    def resolve(self, name: str, customer: CustomerLocale | None = None) -> BusinessCalendar:
        """The concrete calendar, filling in the customer's zone and country if needed."""
        if self.depends_on_customer and customer is None:
            raise ValueError(f"calendar {name!r} needs the customer's time zone and country")
        zone = customer.timezone if self.timezone == CUSTOMER and customer else self.timezone
        country = customer.country if self.holidays == CUSTOMER and customer else self.holidays
        return BusinessCalendar(
            name=name,
            timezone=ZoneInfo(zone),
            opens_minute=_minutes(self.opens),
            closes_minute=_minutes(self.closes),
            days=self.days,
            holidays=HolidaySource(country) if country else None,
            require_official_schedule=self.require_official_schedule,
        )


class DurationSpec(_Strict):
    """A target length: wall-clock hours/minutes or business days of its calendar."""

    hours: Annotated[float, Field(gt=0)] | None = None
    minutes: Annotated[float, Field(gt=0)] | None = None
    business_days: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [v for v in (self.hours, self.minutes, self.business_days) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of hours, minutes, business_days")
        return self

    def length(self, calendar: BusinessCalendar) -> timedelta:
        """Business time to count; a business day is one full day of `calendar` (§7.1)."""
        if self.business_days is not None:
            return calendar.nominal_day_length * self.business_days
        if self.hours is not None:
            return timedelta(hours=self.hours)
        return timedelta(minutes=self.minutes or 0)

    def describe(self) -> str:
        if self.business_days is not None:
            return f"{self.business_days:g} business day(s)"
        if self.hours is not None:
            return f"{self.hours:g} hour(s)"
        return f"{self.minutes:g} minute(s)"


class TargetSpec(_Strict):
    """A response target and the calendar its clock runs on."""

    initial_response: DurationSpec
    calendar: str
    follow_up_cadence: DurationSpec | None = None


class SeveritySpec(_Strict):
    """What a severity means and who may get it (§4)."""

    name: str
    description: str = ""
    requires_agreement: Agreement | None = None
    only_categories: tuple[Category, ...] | None = None


class CategorySpec(_Strict):
    """A kind of support: its severity cap and its targets per severity (§3, §5)."""

    description: str = ""
    max_severity: Severity
    targets: dict[Severity, TargetSpec]


class DowngradeSpec(_Strict):
    """How long a request must wait on the customer before it may be downgraded (§4)."""

    unresponsive_after: DurationSpec


class CallerVerificationSpec(_Strict):
    """The one-time code of a caller on an unregistered number (§2): its size and its life."""

    code_digits: int = Field(default=6, ge=4, le=12)
    valid_for: DurationSpec = DurationSpec(minutes=10)
    max_attempts: int = Field(default=5, ge=1, le=20)

    @model_validator(mode="after")
    def _wall_clock(self) -> Self:
        if self.valid_for.business_days is not None:
            raise ValueError("valid_for is wall-clock time: give hours or minutes")
        return self

    @property
    def lifetime(self) -> timedelta:
        """How long a code may be read back after it was sent."""
        return timedelta(hours=self.valid_for.hours or 0, minutes=self.valid_for.minutes or 0)


class ClosureReasonSpec(_Strict):
    """How a closure reason reads, and whether it closes a case outside the policy's scope."""

    label: str = Field(min_length=1)
    out_of_scope: bool = False


class Policy(_Strict):
    """One version of the support policy."""

    version: str = Field(min_length=1)
    at_risk_ratio: float = Field(gt=0, lt=1)
    calendars: dict[str, CalendarSpec]
    severities: dict[Severity, SeveritySpec]
    categories: dict[Category, CategorySpec]
    downgrade: DowngradeSpec
    # Versions written before closure reasons existed have none; a policy that defines
    # them defines every code, so a code means the same under every later version.
    closure_reasons: dict[ClosureReason, ClosureReasonSpec] = Field(default_factory=dict)
    # Versions written before caller verification was configurable use its defaults.
    caller_verification: CallerVerificationSpec = CallerVerificationSpec()
    # Versions before 2025.3 list no support lines.
    support_lines: dict[str, SupportLineSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        missing = [s.value for s in Severity if s not in self.severities]
        if missing:
            raise ValueError(f"severities: missing {', '.join(missing)}")
        check_lines(self.support_lines, set(self.calendars))
        unlabelled = [r.value for r in ClosureReason if r not in self.closure_reasons]
        if self.closure_reasons and unlabelled:
            raise ValueError(f"closure_reasons: missing {', '.join(unlabelled)}")
        for category in Category:
            spec = self.categories.get(category)
            if spec is None:
                raise ValueError(f"categories: missing {category.value}")
            for severity in self.allowed_severities(category):
                target = spec.targets.get(severity)
                if target is None:
                    raise ValueError(
                        f"categories.{category.value}.targets: missing severity {severity.value}"
                    )
                if target.calendar not in self.calendars:
                    raise ValueError(
                        f"categories.{category.value}.targets.{severity.value}.calendar: "
                        f"unknown calendar {target.calendar!r}"
                    )
        return self

    def allowed_severities(self, category: Category) -> list[Severity]:
        """Severities a request of `category` may have, ignoring the agreement."""
        cap = self.categories[category].max_severity
        return [
            s
            for s in Severity
            if not s.is_more_severe_than(cap)
            and (
                self.severities[s].only_categories is None
                or category in (self.severities[s].only_categories or ())
            )
        ]

    def target(self, category: Category, severity: Severity) -> TargetSpec:
        """The target spec for a category and severity the policy allows."""
        return self.categories[category].targets[severity]

    def closure_reason(self, code: str) -> ClosureReasonSpec | None:
        """The policy's entry for a closure reason code, None if it defines no such code."""
        known = {reason.value: spec for reason, spec in self.closure_reasons.items()}
        return known.get(code)

    def support_line(self, country: str) -> LineFor | None:
        """The phone line a caller from `country` uses (its own, else the fallback)."""
        return line_for(self.support_lines, country)

    def calendar(self, name: str, customer: CustomerLocale | None = None) -> BusinessCalendar:
        """A named calendar, resolved for the customer where it depends on them."""
        return self.calendars[name].resolve(name, customer)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _check_country(code: str) -> str:
    try:
        HolidaySource(code)
    except UnknownCountry as error:
        raise ValueError(error.message) from None
    return code


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value
