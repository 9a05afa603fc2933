"""The expected wait for a first response, promised when a request opens (§2, product decision).

Pure: the read side observes the queue and the recent first responses of a category and
severity (`WaitingObservation`); `estimate_wait` turns that into a business duration and,
on the target's calendar, the instant the customer is told (docs/sla.md, "Expected
waiting time").

The rule: the recent **median** first-response time (business time) is what a case
waited when the queue was as long as usual; by Little's law the usual queue is the recent
response rate times that median. A longer queue ahead stretches the wait in proportion,
a shorter one shrinks it:

    wait = median * (queue_ahead + 1) / (usual_queue + 1),  usual_queue = rate * median

(the +1 counts the new case itself). With no first response in the window the promise
is the policy's target for the severity, and the basis says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from typing_extensions import TypedDict  # pydantic reads it for the topic's schema (3.11)

from domain.policy.model import CustomerLocale, Policy
from domain.sla.business_time import deadline, elapsed
from domain.sla.targets import ResolvedTarget, initial_response_target
from domain.values import Category, Severity

RECENT_MEDIAN = "recent_median"
POLICY_TARGET = "policy_target"


@dataclass(frozen=True)
class WaitingObservation:
    """What the SLA tracker saw for one category and severity when the request opened."""

    queue_ahead: int  # open cases of the category and severity not yet first-responded
    responses: int  # first responses in the window
    median_seconds: float | None  # their median, in business seconds (None: none)
    window_start: datetime  # the window's start; it ends at the opening
    window_days: int


class WaitingEstimate(TypedDict):
    """How an expected first response was estimated, as recorded on the opening."""

    method: str  # recent_median or policy_target
    basis: str  # the same in words, for the customer and the report's readers
    severity: str  # the severity whose queue and target it used (the triage severity)
    calendar: str
    business_seconds: int  # the expected wait, in business time on `calendar`
    queue_ahead: int
    sample_size: int
    median_seconds: float | None
    rate_per_business_hour: float | None
    window_days: int


@dataclass(frozen=True)
class Estimate:
    """The promise: when the first response is expected, and how that was worked out."""

    expected_at: datetime
    details: WaitingEstimate


def estimate_wait(
    observation: WaitingObservation,
    target: ResolvedTarget,
    *,
    severity: str,
    calendar: str,
    opened_at: datetime,
) -> Estimate:
    """The expected first response of a request opened at `opened_at` (see the module)."""
    window = elapsed(min(observation.window_start, opened_at), opened_at, target.calendar)
    hours = window.total_seconds() / 3600
    median = observation.median_seconds
    if observation.responses == 0 or median is None or hours <= 0:
        wait = target.length
        method, rate = POLICY_TARGET, None
        basis = (
            f"the policy's target ({target.description}): no first response of this "
            f"category and severity in the last {observation.window_days} day(s)"
        )
    else:
        rate = observation.responses / hours
        usual = rate * median / 3600
        wait = timedelta(seconds=round(median * (observation.queue_ahead + 1) / (usual + 1)))
        method = RECENT_MEDIAN
        basis = (
            f"{observation.queue_ahead} case(s) ahead against {usual:.1f} usually waiting "
            f"({rate:.2f} first responses per business hour), median first response "
            f"{_hours(median)} over {observation.responses} case(s) in the last "
            f"{observation.window_days} day(s), on {calendar}"
        )
    details = WaitingEstimate(
        method=method,
        basis=basis,
        severity=severity,
        calendar=calendar,
        business_seconds=int(wait.total_seconds()),
        queue_ahead=observation.queue_ahead,
        sample_size=observation.responses,
        median_seconds=median,
        rate_per_business_hour=rate,
        window_days=observation.window_days,
    )
    return Estimate(deadline(opened_at, wait, target.calendar).at, details)


def _hours(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def promise(
    observations: Mapping[str, WaitingObservation],
    policy: Policy,
    category: Category,
    severity: Severity,
    customer: CustomerLocale,
    opened_at: datetime,
) -> Estimate:
    """The promise for a request opened at `opened_at` whose clock runs on `severity`'s
    target: from its observation, or from the target alone when none was made."""
    target = initial_response_target(policy, category, severity, customer)
    none_seen = WaitingObservation(0, 0, None, opened_at, 0)
    return estimate_wait(
        observations.get(severity.value, none_seen),
        target,
        severity=severity.value,
        calendar=policy.target(category, severity).calendar,
        opened_at=opened_at,
    )
