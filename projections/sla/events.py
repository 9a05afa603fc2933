"""The SLA-events topic contract: one CloudEvent per clock transition.

Type `casebook.sla.clock_<change>.v1` (started, recomputed, at_risk, breached, met,
stopped), subject the case id, id `<case>:<metric>:<n>` (stable: a rebuilt projection
names the same transition the same way), time the instant the transition truly happened.
The payload is `ClockEvent`; its JSON Schema is in `schemas/sla-events/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field

from domain.calendars.calendar import ClosedDay
from domain.sla.business_time import CountedSpan, Deadline, DeadlineExplanation, DeadlineProof
from domain.sla.clock import Change, Metric, State, Transition

TOPIC = "sla-events.v1"


class ProvenSpan(BaseModel):
    """Business time counted towards the deadline on one local day (UTC instants)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date
    start: datetime
    end: datetime
    makeup_workday: bool


class SkippedDay(BaseModel):
    """A local day the calendar did not open, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date
    reason: str


class Proof(BaseModel):
    """What proves a deadline, as recorded when it was set: the policy version, the
    calendar and the data that answered, and the business time counted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_version: str
    calendar: str
    calendar_source: str = Field(
        description="The holiday data consulted, e.g. 'holidays 0.109' ('none': no holidays)."
    )
    data_sha256: str = Field(
        description="SHA-256 of the calendar facts consulted: its hours and zone, and each "
        "day walked (open window in UTC, make-up working day, holiday or weekend), and the "
        "years whose schedule was estimated."
    )
    started_at: datetime
    target_seconds: float
    deadline: datetime
    spans: list[ProvenSpan]
    skipped_days: list[SkippedDay]
    provisional_years: list[int]

    @classmethod
    def of(cls, proof: DeadlineProof) -> Proof:
        e = proof.explanation
        return cls(
            policy_version=proof.policy_version,
            calendar=e.calendar,
            calendar_source=e.calendar_source,
            data_sha256=e.data_sha256,
            started_at=_utc(e.start),
            target_seconds=e.target.total_seconds(),
            deadline=_utc(e.deadline.at),
            spans=[
                ProvenSpan(
                    day=s.day, start=_utc(s.start), end=_utc(s.end), makeup_workday=s.makeup_workday
                )
                for s in e.spans
            ],
            skipped_days=[SkippedDay(day=d.day, reason=d.reason) for d in e.skipped_days],
            provisional_years=sorted(e.deadline.provisional_years),
        )

    def to_domain(self) -> DeadlineProof:
        """The recorded proof as the domain computes it."""
        explanation = DeadlineExplanation(
            calendar=self.calendar,
            start=self.started_at,
            target=timedelta(seconds=self.target_seconds),
            deadline=Deadline(self.deadline, frozenset(self.provisional_years)),
            spans=tuple(CountedSpan(s.day, s.start, s.end, s.makeup_workday) for s in self.spans),
            skipped_days=tuple(ClosedDay(d.day, d.reason) for d in self.skipped_days),
            calendar_source=self.calendar_source,
            data_sha256=self.data_sha256,
        )
        return DeadlineProof(self.policy_version, explanation)


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
    proof: Proof | None = Field(
        default=None,
        description="What proves the deadline, on clock_started and clock_recomputed events "
        "that set one (absent on other changes, and in events published before proofs were "
        "recorded).",
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
        payload=_dump(clock_event(transition, organisation_id, category)),
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
        _dump_json(clock_event(transition, organisation_id, category)),
    )


# Without a proof the payload is what it was before proofs (and what the timer's SQL
# writes): no `proof` key at all.
def _dump(event: ClockEvent) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude=None if event.proof else {"proof"})


def _dump_json(event: ClockEvent) -> str:
    return event.model_dump_json(exclude=None if event.proof else {"proof"})


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
        proof=Proof.of(clock.proof) if clock.proof and _sets_deadline(transition) else None,
    )


def _sets_deadline(transition: Transition) -> bool:
    return transition.change in (Change.STARTED, Change.RECOMPUTED)


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: None) -> None: ...
def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None
