"""The SLA clock: its states and how events and time move it (policy §5, §7.4-§7.6).

The one clock model: the SLA projection keeps these clocks, and the timer's SQL
(`projections/sla/due.py`) is `advance` written for PostgreSQL, held equal to it by a
property test. A clock is one metric of one case. It is recomputed from its original
start whenever its target changes, turns at risk at `at_risk_at` and breached at its
deadline, and every change is a `Transition` with the instant it truly happened, so
a clock advanced late (after downtime) records the same history as one advanced live.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from domain.calendars.calendar import BusinessCalendar
from domain.sla.business_time import DeadlineProof, deadline, elapsed, explain
from domain.sla.targets import ResolvedTarget


class Metric(StrEnum):
    """What a clock measures."""

    INITIAL_RESPONSE = "initial_response"
    FOLLOW_UP = "follow_up"


# No docstring on purpose: the SLA events' published JSON Schemas take an enum's
# docstring as its description, and this one has none.
class State(StrEnum):
    RUNNING = "running"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
    STOPPED = "stopped"


class Change(StrEnum):
    """The kinds of transition, each published as `casebook.sla.clock_<kind>.v1`."""

    STARTED = "started"
    RECOMPUTED = "recomputed"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Clock:
    """One metric's clock; `deadline` is None while the customer's locale is unknown."""

    case_id: str
    metric: Metric
    severity: str
    policy_version: str
    started_at: datetime
    target: timedelta
    calendar: str
    description: str
    deadline: datetime | None
    at_risk_at: datetime | None
    provisional: bool
    state: State
    met_at: datetime | None = None
    breached_at: datetime | None = None
    stopped_at: datetime | None = None
    # How many transitions this clock has had: numbers its published SLA events.
    transitions: int = 0
    # False for a triage clock: the case awaits its assessment and the clock runs on the
    # strictest target the policy allows it (`targets.triage_severity`); the assessment
    # recomputes it from the opening and sets this.
    assessed: bool = True
    # What proves the deadline, recorded whenever it is set (None while the locale is
    # unknown, and on clocks recorded before proofs were: migration 0018).
    proof: DeadlineProof | None = None

    @property
    def is_finished(self) -> bool:
        """Met, stopped, or breached and then answered: nothing more can happen to it."""
        return is_finished(self.state, self.stopped_at)

    @property
    def next_due_at(self) -> datetime | None:
        """When time alone will next change this clock, if ever."""
        if self.is_finished:
            return None
        if self.state is State.RUNNING:
            return self.at_risk_at
        if self.state is State.AT_RISK:
            return self.deadline
        return None

    @property
    def open_deadline(self) -> datetime | None:
        """The deadline an agent still has to meet (an overdue one included)."""
        return None if self.is_finished else self.deadline


def is_finished(state: State, stopped_at: datetime | None) -> bool:
    """A clock in `state`, stopped at `stopped_at` (if ever), can no longer change."""
    return state in (State.MET, State.STOPPED) or stopped_at is not None


def time_left(due: datetime, now: datetime, calendar: BusinessCalendar) -> timedelta:
    """Business time left before the deadline `due` at `now`; negative once overdue."""
    return elapsed(now, due, calendar) if now < due else -elapsed(due, now, calendar)


@dataclass(frozen=True)
class Transition:
    """A clock's change, the instant it happened, why, and the clock after it."""

    change: Change
    at: datetime
    reason: str
    clock: Clock

    @property
    def event_id(self) -> str:
        """Stable across replays: the case, the metric and the transition's number."""
        return f"{self.clock.case_id}:{self.clock.metric.value}:{self.clock.transitions}"


def start(
    case_id: str,
    metric: Metric,
    severity: str,
    started_at: datetime,
    target: ResolvedTarget | None,
    *,
    calendar: str,
    policy_version: str,
    at: datetime,
    reason: str,
    numbered_after: int = 0,
    assessed: bool = True,
) -> list[Transition]:
    """A new clock from `started_at`; `target` None means its calendar is not known yet.

    A clock that restarts (a follow-up cycle) keeps numbering its transitions after the
    previous cycle's, `numbered_after`; an unassessed case's clock (`assessed` False)
    runs on its triage target.
    """
    blank = Clock(
        case_id=case_id,
        metric=metric,
        severity=severity,
        policy_version=policy_version,
        started_at=started_at,
        target=timedelta(0),
        calendar=calendar,
        description="",
        deadline=None,
        at_risk_at=None,
        provisional=False,
        state=State.RUNNING,
        transitions=numbered_after,
        assessed=assessed,
    )
    return _retarget(blank, severity, target, Change.STARTED, at, reason)


def recompute(
    clock: Clock,
    severity: str,
    target: ResolvedTarget | None,
    *,
    calendar: str,
    at: datetime,
    reason: str,
    assessed: bool | None = None,
) -> list[Transition]:
    """The clock under a new target, counted again from its original start (§7.5).

    The time-driven states are re-derived at `at`: an escalation can be breached at
    once, and a downgrade (or an assessment below the triage target) can lift a breach
    that the stricter target had caused. `assessed` True marks a triage clock assessed.
    """
    moved = replace(clock, calendar=calendar, assessed=clock.assessed or bool(assessed))
    return _retarget(moved, severity, target, Change.RECOMPUTED, at, reason)


def _retarget(
    clock: Clock,
    severity: str,
    target: ResolvedTarget | None,
    change: Change,
    at: datetime,
    reason: str,
) -> list[Transition]:
    if target is None:
        pending = replace(
            clock,
            severity=severity,
            deadline=None,
            at_risk_at=None,
            state=State.RUNNING,
            breached_at=None,
            transitions=clock.transitions + 1,
            proof=None,
        )
        waiting = f"{reason}; waiting for the customer's locale"
        return [Transition(change, at, waiting, pending)]
    proven = explain(clock.started_at, target.length, target.calendar)
    due = proven.deadline
    at_risk = deadline(clock.started_at, target.length * target.at_risk_ratio, target.calendar)
    fresh = replace(
        clock,
        severity=severity,
        policy_version=target.policy_version,
        target=target.length,
        description=target.description,
        deadline=due.at,
        at_risk_at=at_risk.at,
        provisional=due.is_provisional,
        state=State.RUNNING,
        breached_at=None,
        transitions=clock.transitions + 1,
        proof=DeadlineProof(target.policy_version, proven),
    )
    return [Transition(change, at, reason, fresh), *advance(fresh, at)]


def advance(clock: Clock, until: datetime) -> list[Transition]:
    """The at-risk and breach transitions whose instants have come by `until`.

    Each is stamped with its true instant (at-risk time, deadline), not with `until`.
    """
    transitions: list[Transition] = []
    current = clock
    if current.is_finished or current.deadline is None or current.at_risk_at is None:
        return transitions
    if current.state is State.RUNNING and current.at_risk_at <= until:
        current = replace(current, state=State.AT_RISK, transitions=current.transitions + 1)
        transitions.append(
            Transition(Change.AT_RISK, current.at_risk_at or until, "at-risk share used", current)
        )
    due = current.deadline
    if current.state is State.AT_RISK and due is not None and due <= until:
        current = replace(
            current, state=State.BREACHED, breached_at=due, transitions=current.transitions + 1
        )
        transitions.append(Transition(Change.BREACHED, due, "deadline passed", current))
    return transitions


def last(clock: Clock, transitions: list[Transition]) -> Clock:
    """The clock after `transitions` (itself if there were none)."""
    return transitions[-1].clock if transitions else clock


def finish(clock: Clock, at: datetime, reason: str, *, meets: bool) -> list[Transition]:
    """Stop the clock at `at`: met if `meets` and within the deadline, else as it stands.

    Time up to `at` is accounted first, so a response after the deadline finds the clock
    breached at the deadline and leaves it breached.
    """
    if clock.is_finished:
        return []
    due = clock.deadline
    if clock.state is State.BREACHED and meets and due is not None and at <= due:
        # The timer marked the breach before the in-time response reached the tracker
        # (consumer lag): the response decides.
        met = replace(
            clock, state=State.MET, met_at=at, breached_at=None, transitions=clock.transitions + 1
        )
        late = f"{reason} (in time; it reached the tracker after the breach was marked)"
        return [Transition(Change.MET, at, late, met)]
    moved = advance(clock, at)
    current = last(clock, moved)
    if current.state is State.BREACHED:
        answered = replace(current, stopped_at=at, transitions=current.transitions + 1)
        return [*moved, Transition(Change.STOPPED, at, reason, answered)]
    if meets:
        met = replace(current, state=State.MET, met_at=at, transitions=current.transitions + 1)
        return [*moved, Transition(Change.MET, at, reason, met)]
    stopped = replace(
        current, state=State.STOPPED, stopped_at=at, transitions=current.transitions + 1
    )
    return [*moved, Transition(Change.STOPPED, at, reason, stopped)]
