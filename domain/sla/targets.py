"""SLA targets resolved from the policy: how much business time, on which calendar (§5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from domain.calendars.calendar import BusinessCalendar
from domain.policy.model import CustomerLocale, Policy
from domain.values import Category, Severity


@dataclass(frozen=True)
class ResolvedTarget:
    """A target made concrete: how much business time, on which calendar, which policy."""

    length: timedelta
    calendar: BusinessCalendar
    policy_version: str
    at_risk_ratio: float
    description: str


def initial_response_target(
    policy: Policy,
    category: Category,
    severity: Severity,
    customer: CustomerLocale | None = None,
) -> ResolvedTarget:
    """The initial-response target for a category and severity under `policy`."""
    spec = policy.target(category, severity)
    calendar = policy.calendar(spec.calendar, customer)
    return ResolvedTarget(
        length=spec.initial_response.length(calendar),
        calendar=calendar,
        policy_version=policy.version,
        at_risk_ratio=policy.at_risk_ratio,
        description=f"{severity.value} {category.value}: {spec.initial_response.describe()}"
        f" on {spec.calendar}",
    )


def follow_up_target(
    policy: Policy,
    category: Category,
    severity: Severity,
    customer: CustomerLocale | None = None,
) -> ResolvedTarget | None:
    """The follow-up cadence after a response (§5, severity A), if the policy sets one."""
    spec = policy.target(category, severity)
    if spec.follow_up_cadence is None:
        return None
    calendar = policy.calendar(spec.calendar, customer)
    return ResolvedTarget(
        length=spec.follow_up_cadence.length(calendar),
        calendar=calendar,
        policy_version=policy.version,
        at_risk_ratio=policy.at_risk_ratio,
        description=f"{severity.value} {category.value}: follow-up every "
        f"{spec.follow_up_cadence.describe()} on {spec.calendar}",
    )
