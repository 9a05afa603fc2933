"""The SLA-events topic contract: one CloudEvent per clock transition.

Type `casebook.sla.clock_<change>.v1` (started, recomputed, at_risk, breached, met,
stopped), subject the case id, id `<case>:<metric>:<n>` (stable: a rebuilt projection
names the same transition the same way), time the instant the transition truly happened.
The payload is `ClockEvent`; its JSON Schema is in `schemas/sla-events/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field

from domain.sla.clock import Change, Metric, State, Transition

TOPIC = "sla-events.v1"


class ClockEvent(BaseModel):
    """A case's SLA clock changed: what changed, when, why, and the clock after it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    organisation_id: str
    category: str
    metric: Metric
    change: Change
    at: datetime = Field(description="When the change happened (a breach: the deadline).")
    reason: str
    state: State
    severity: str
    policy_version: str
    started_at: datetime
    deadline: datetime | None = Field(description="None while the customer's locale is unknown.")
    at_risk_at: datetime | None
    met_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    provisional: bool = Field(description="The deadline spans an unofficial holiday schedule.")
    assessed: bool = Field(
        default=True,
        description="False while the case awaits its assessment: a triage clock on the "
        "strictest target the policy allows the case (absent in events published before "
        "triage clocks existed: true).",
    )


@dataclass(frozen=True)
class SlaEvent:
    id: str
    type: str
    subject: str
    time: datetime
    payload: dict[str, Any]


def event_type(change: Change) -> str:
    return f"casebook.sla.clock_{change.value}.v1"


def sla_event(transition: Transition, organisation_id: str, category: str) -> SlaEvent:
    """The published form of one transition."""
    return SlaEvent(
        id=transition.event_id,
        type=event_type(transition.change),
        subject=transition.clock.case_id,
        time=transition.at,
        payload=clock_event(transition, organisation_id, category).model_dump(mode="json"),
    )


def outbox_row(
    transition: Transition, organisation_id: str, category: str
) -> tuple[str, str, str, datetime, str]:
    """`sla_event` as an outbox row: id, type, subject, time, payload as JSON text.

    The same event; the payload is serialised by pydantic in one step (no dict in between),
    which a timer tick marking thousands of clocks notices.
    """
    return (
        transition.event_id,
        event_type(transition.change),
        transition.clock.case_id,
        transition.at,
        clock_event(transition, organisation_id, category).model_dump_json(),
    )


def clock_event(transition: Transition, organisation_id: str, category: str) -> ClockEvent:
    """The payload of one transition; its instants in UTC, whatever zone they were read in
    (the timer writes the same payload in SQL, in UTC)."""
    clock = transition.clock
    return ClockEvent(
        case_id=clock.case_id,
        organisation_id=organisation_id,
        category=category,
        metric=clock.metric,
        change=transition.change,
        at=_utc(transition.at),
        reason=transition.reason,
        state=clock.state,
        severity=clock.severity,
        policy_version=clock.policy_version,
        started_at=_utc(clock.started_at),
        deadline=_utc(clock.deadline),
        at_risk_at=_utc(clock.at_risk_at),
        met_at=_utc(clock.met_at),
        breached_at=_utc(clock.breached_at),
        stopped_at=_utc(clock.stopped_at),
        provisional=clock.provisional,
        assessed=clock.assessed,
    )


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: None) -> None: ...
def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None
