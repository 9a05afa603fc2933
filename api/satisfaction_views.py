"""Response body of the satisfaction report (§6)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from projections.sla.satisfaction import Satisfaction, SatisfactionReport


class SatisfactionView(BaseModel):
    """Survey figures of a set of resolved cases."""

    invited: int = Field(description="Resolved cases: each resolution invites a survey.")
    answered: int
    satisfied: int = Field(description="Answers of 4 or 5.")
    csat: float | None = Field(description="satisfied / answered; null without answers.")
    response_rate: float | None = Field(description="answered / invited.")
    mean_score: float | None

    @classmethod
    def of(cls, figures: Satisfaction) -> SatisfactionView:
        return cls(
            invited=figures.invited,
            answered=figures.answered,
            satisfied=figures.satisfied,
            csat=figures.csat,
            response_rate=figures.response_rate,
            mean_score=figures.mean_score,
        )


class SatisfactionReportView(BaseModel):
    """Survey answers of the cases whose latest resolution fell in [since, until)."""

    since: datetime
    until: datetime
    period: str
    total: SatisfactionView
    by_period: dict[str, SatisfactionView]
    by_category: dict[str, SatisfactionView]
    by_severity: dict[str, SatisfactionView]
    by_agent: dict[str, SatisfactionView]

    @classmethod
    def of(cls, report: SatisfactionReport) -> SatisfactionReportView:
        def each(groups: dict[str, Satisfaction]) -> dict[str, SatisfactionView]:
            return {key: SatisfactionView.of(figures) for key, figures in groups.items()}

        return cls(
            since=report.since,
            until=report.until,
            period=report.period,
            total=SatisfactionView.of(report.total),
            by_period={
                k.date().isoformat(): SatisfactionView.of(v) for k, v in report.by_period.items()
            },
            by_category=each(report.by_category),
            by_severity=each(report.by_severity),
            by_agent=each(report.by_agent),
        )
