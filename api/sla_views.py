"""Response bodies of the SLA read routes: the agent queue and a case's clocks (the
compliance report's are in `api.compliance_views`)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from projections.sla.queries import (
    CaseSla,
    ClockStatus,
    HistoryEntry,
    QueueEntry,
)


class SpanView(BaseModel):
    """Business time that counted towards the deadline on one local day."""

    day: date
    start: datetime
    end: datetime
    makeup_workday: bool


class SkippedDayView(BaseModel):
    day: date
    reason: str


class ExplanationView(BaseModel):
    """Why the deadline is what it is: the calendar's open spans counted and days skipped,
    as recorded when the deadline was set."""

    recorded: bool = Field(
        description="true: the proof recorded with the deadline; false: a clock recorded "
        "before proofs were, explained by recomputing with the calendar data installed now"
    )
    policy_version: str | None = Field(
        description="The policy version the recorded proof names; null when recomputed."
    )
    calendar: str
    calendar_source: str = Field(
        description="The holiday data that answered, e.g. 'holidays 0.109' ('none': no holidays)"
    )
    data_sha256: str = Field(
        description="SHA-256 of the calendar facts consulted (`casebook sla verify` compares it)"
    )
    spans: list[SpanView]
    skipped_days: list[SkippedDayView]
    provisional_years: list[int]


class ClockView(BaseModel):
    """One SLA clock of a case."""

    metric: str = Field(description="initial_response or follow_up")
    state: str = Field(description="running, at_risk, breached, met or stopped")
    severity: str
    target: str = Field(
        description="What the policy promises, e.g. 'B technical: 1 business day(s)'."
    )
    target_seconds: float
    calendar: str
    policy_version: str
    started_at: datetime
    deadline: datetime | None = Field(description="null while the customer's locale is unknown")
    at_risk_at: datetime | None
    deadline_is_provisional: bool
    met_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    remaining_business_seconds: float | None = Field(
        description="Business time left; negative once overdue; null once finished."
    )
    explanation: ExplanationView | None = None
    assessed: bool = Field(
        default=True,
        description="false for a triage clock: the case awaits its assessment and the "
        "clock runs on the strictest target the policy allows it (`severity` is that "
        "target's, not an assessment)",
    )

    @classmethod
    def of(cls, clock: ClockStatus) -> ClockView:
        explanation = None
        if clock.explanation is not None:
            e = clock.explanation
            explanation = ExplanationView(
                recorded=clock.explanation_recorded,
                policy_version=clock.proof_policy_version,
                calendar=e.calendar,
                calendar_source=e.calendar_source,
                data_sha256=e.data_sha256,
                spans=[
                    SpanView(day=s.day, start=s.start, end=s.end, makeup_workday=s.makeup_workday)
                    for s in e.spans
                ],
                skipped_days=[SkippedDayView(day=d.day, reason=d.reason) for d in e.skipped_days],
                provisional_years=sorted(e.deadline.provisional_years),
            )
        remaining = clock.remaining.total_seconds() if clock.remaining is not None else None
        return cls(
            metric=clock.metric.value,
            state=clock.state.value,
            severity=clock.severity,
            target=clock.description,
            target_seconds=clock.target.total_seconds(),
            calendar=clock.calendar,
            policy_version=clock.policy_version,
            started_at=clock.started_at,
            deadline=clock.deadline,
            at_risk_at=clock.at_risk_at,
            deadline_is_provisional=clock.provisional,
            met_at=clock.met_at,
            breached_at=clock.breached_at,
            stopped_at=clock.stopped_at,
            remaining_business_seconds=remaining,
            explanation=explanation,
            assessed=clock.assessed,
        )


class QueueItemView(BaseModel):
    """An unresolved case and the deadline it must meet next."""

    case_id: str
    organisation_id: str
    category: str
    severity: str | None
    status: str
    agent_id: str | None
    opened_at: datetime
    customer_unresponsive_since: datetime | None
    due_at: datetime | None
    clock: ClockView | None
    incident_id: str | None = Field(
        default=None, description="The service incident the case was filed about, if any."
    )

    @classmethod
    def of(cls, entry: QueueEntry) -> QueueItemView:
        return cls(
            case_id=entry.case_id,
            organisation_id=entry.organisation_id,
            category=entry.category,
            severity=entry.severity,
            status=entry.status,
            agent_id=entry.agent_id,
            opened_at=entry.opened_at,
            customer_unresponsive_since=entry.unresponsive_since,
            due_at=entry.due_at,
            clock=ClockView.of(entry.clock) if entry.clock is not None else None,
            incident_id=entry.incident_id,
        )


class QueueView(BaseModel):
    """The agent queue: nearest deadline first, cases awaiting assessment by their triage
    clock's deadline."""

    items: list[QueueItemView]
    next_cursor: str | None = Field(description="Pass as `after` for the next page.")
    next: str | None = Field(description="The next page's URL; null at the end.")


class TransitionView(BaseModel):
    metric: str
    change: str
    at: datetime
    reason: str
    state: str
    severity: str
    policy_version: str
    deadline: datetime | None

    @classmethod
    def of(cls, entry: HistoryEntry) -> TransitionView:
        return cls(
            metric=entry.metric.value,
            change=entry.change,
            at=entry.at,
            reason=entry.reason,
            state=entry.state.value,
            severity=entry.severity,
            policy_version=entry.policy_version,
            deadline=entry.deadline,
        )


class CaseSlaView(BaseModel):
    """A case's SLA clocks, each deadline explained, and every transition with its reason."""

    case_id: str
    organisation_id: str
    category: str
    severity: str | None
    status: str
    clocks: list[ClockView]
    history: list[TransitionView]

    @classmethod
    def of(cls, sla: CaseSla) -> CaseSlaView:
        return cls(
            case_id=sla.case_id,
            organisation_id=sla.organisation_id,
            category=sla.category,
            severity=sla.severity,
            status=sla.status,
            clocks=[ClockView.of(c) for c in sla.clocks],
            history=[TransitionView.of(h) for h in sla.history],
        )
