"""Bodies of the pipeline status route: each part's state, lag and last error, no case data."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.part_reports import ReportedPart
from casebook.supervision import PartStatus


class PartView(BaseModel):
    """One relay, consumer, timer or outbox publisher, as its process last knew it."""

    process: str = Field(description="host:pid of the process running the part.")
    part: str = Field(description="relay, sla-consumer, sla-timer, audit-consumer, ...")
    state: str = Field(description="starting, running, standby, down or stopped.")
    since: datetime
    restarts: int = Field(description="Times its supervisor started it again.")
    failures: int
    lag: int | None = Field(description="Records or events behind (None: not known yet).")
    last_error: str | None
    last_error_at: datetime | None
    failing_since: datetime | None = Field(description="Start of the outage it is in, if any.")
    trouble: str | None = Field(description="Why it makes its process unhealthy, if it does.")
    report_age_s: float = Field(description="0 for this process; else the report's age.")
    stale: bool = Field(description="The process stopped reporting: it may be gone.")

    @classmethod
    def of_status(cls, process: str, status: PartStatus, trouble: str | None) -> PartView:
        return cls(
            process=process,
            part=status.name,
            state=status.state.value,
            since=status.since,
            restarts=status.restarts,
            failures=status.failures,
            lag=status.lag,
            last_error=status.last_error,
            last_error_at=status.last_error_at,
            failing_since=status.failing_since,
            trouble=trouble,
            report_age_s=0.0,
            stale=False,
        )

    @classmethod
    def of_report(cls, row: ReportedPart) -> PartView:
        return cls(
            process=row.process,
            part=row.part,
            state=row.state,
            since=row.since,
            restarts=row.restarts,
            failures=row.failures,
            lag=row.lag,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
            failing_since=row.failing_since,
            trouble=row.trouble,
            report_age_s=round(row.age_s, 1),
            stale=row.stale,
        )


class PipelineStatus(BaseModel):
    """The parts of this process, live, and those other processes last reported."""

    process: str = Field(description="host:pid of the process that answered.")
    healthy: bool = Field(description="False when a part of this process is in trouble.")
    others_known: bool = Field(
        description="False when the database could not be read: other processes unknown."
    )
    parts: list[PartView]
