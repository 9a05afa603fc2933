"""Response bodies of the SLA compliance report: tallies by period and group, promises."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from pydantic import BaseModel, Field

from projections.sla.queries import ComplianceReport, Promises, Tally


class TallyView(BaseModel):
    met: int
    breached: int
    total: int = Field(description="met + breached: targets of cases within the policy's scope")
    met_rate: float | None = Field(description="met / total; null when nothing was decided")
    breach_rate: float | None
    out_of_scope: int = Field(
        description="decided targets of cases closed with an out-of-scope reason (support-"
        "policy §3): in neither met, breached nor total"
    )

    @classmethod
    def of(cls, tally: Tally) -> TallyView:
        rate = tally.met_rate
        return cls(
            met=tally.met,
            breached=tally.breached,
            total=tally.total,
            met_rate=rate,
            breach_rate=None if rate is None else 1 - rate,
            out_of_scope=tally.out_of_scope,
        )


class GroupView(TallyView):
    period: datetime
    severity: str
    category: str


class PeriodView(TallyView):
    period: datetime


class PromisesView(BaseModel):
    """Cases first-responded in the range that were promised a first response at opening."""

    promised: int
    kept: int = Field(description="first response at or before the promised instant")
    kept_rate: float | None = Field(description="kept / promised; null when none")
    median_error_seconds: float | None = Field(
        description="median of first response minus promise (negative: earlier than promised)"
    )

    @classmethod
    def of(cls, promises: Promises) -> PromisesView:
        return cls(kept_rate=promises.kept_rate, **asdict(promises))


class PromisePeriodView(PromisesView):
    period: datetime


class ComplianceView(BaseModel):
    """Met and breached targets whose outcome fell in [since, until)."""

    metric: str
    period: str
    since: datetime
    until: datetime
    overall: TallyView
    by_severity: dict[str, TallyView]
    by_category: dict[str, TallyView]
    by_period: list[PeriodView]
    groups: list[GroupView]
    closures: dict[str, int] = Field(
        description="resolved cases whose resolution fell in [since, until), per closure "
        "reason (`unspecified`: resolved before reasons were recorded)"
    )
    closures_out_of_scope: int = Field(
        description="how many of those closures the policy counts out of scope"
    )
    promises: PromisesView = Field(
        description="the expected waiting time promised at opening against the first "
        "response, for cases first-responded in [since, until) (whatever the metric)"
    )
    promises_by_period: list[PromisePeriodView]
    cases_by_incident: dict[str, int] = Field(
        default_factory=dict,
        description="cases opened in [since, until) per service incident they are linked to "
        "(by incident id)",
    )

    @classmethod
    def of(cls, report: ComplianceReport) -> ComplianceView:
        return cls(
            metric=report.metric.value,
            period=report.period,
            since=report.since,
            until=report.until,
            overall=TallyView.of(report.overall),
            by_severity={k: TallyView.of(v) for k, v in sorted(report.by_severity.items())},
            by_category={k: TallyView.of(v) for k, v in sorted(report.by_category.items())},
            by_period=[
                PeriodView(period=k, **TallyView.of(v).model_dump())
                for k, v in sorted(report.by_period.items())
            ],
            groups=[
                GroupView(period=p, severity=s, category=c, **TallyView.of(v).model_dump())
                for (p, s, c), v in sorted(report.groups.items())
            ],
            closures=dict(sorted(report.closures.items())),
            closures_out_of_scope=report.closures_out_of_scope,
            promises=PromisesView.of(report.promises),
            promises_by_period=[
                PromisePeriodView(period=k, **PromisesView.of(v).model_dump())
                for k, v in sorted(report.promises_by_period.items())
            ],
            cases_by_incident=dict(report.cases_by_incident),
        )
