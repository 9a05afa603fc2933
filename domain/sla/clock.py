"""The state of an SLA clock at any instant (policy §5 and §7.4-§7.6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.calendars.calendar import BusinessCalendar, as_utc
from domain.policy.model import CustomerLocale, Policy
from domain.sla.business_time import ZERO, Deadline, deadline, elapsed
from domain.values import Category, Severity


class ClockState(StrEnum):
    """Where a clock stands at one instant."""

    RUNNING = "running"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"


@dataclass(frozen=True)
class ResolvedTarget:
    """A target made concrete: how much business time, on which calendar, which policy."""

    length: timedelta
    calendar: BusinessCalendar
    policy_version: str
    at_risk_ratio: float
    description: str


@dataclass(frozen=True)
class ClockReading:
    """What a clock shows at `now`; `stopped_at` is the event that stopped it, if any."""

    state: ClockState
    started_at: datetime
    now: datetime
    target: timedelta
    deadline: Deadline
    at_risk_at: datetime
    used: timedelta
    remaining: timedelta
    stopped_at: datetime | None

    @property
    def breached_at(self) -> datetime | None:
        """A breach happens at the deadline itself, not when someone notices (§7.6)."""
        return self.deadline.at if self.state is ClockState.BREACHED else None


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


def read_clock(
    target: ResolvedTarget,
    started_at: datetime,
    now: datetime,
    stopped_at: datetime | None = None,
) -> ClockReading:
    """The clock's state at `now`.

    After a severity change, call this again with the new severity's target and the
    original opening time: the deadline is recomputed from the start (§7.5), so an
    escalation can be breached at once.
    """
    started, current = as_utc(started_at), as_utc(now)
    due = deadline(started, target.length, target.calendar)
    at_risk_at = deadline(started, target.length * target.at_risk_ratio, target.calendar).at
    stop = as_utc(stopped_at) if stopped_at is not None else None
    until = min(current, stop) if stop is not None else current
    used = elapsed(started, max(until, started), target.calendar)
    return ClockReading(
        state=_state(due.at, at_risk_at, current, stop),
        started_at=started_at,
        now=now,
        target=target.length,
        deadline=due,
        at_risk_at=at_risk_at,
        used=used,
        remaining=max(target.length - used, ZERO),
        stopped_at=stopped_at,
    )


def _state(due: datetime, at_risk_at: datetime, now: datetime, stop: datetime | None) -> ClockState:
    if stop is not None and stop <= now:
        return ClockState.MET if stop <= due else ClockState.BREACHED
    if now >= due:
        return ClockState.BREACHED
    if now >= at_risk_at:
        return ClockState.AT_RISK
    return ClockState.RUNNING
