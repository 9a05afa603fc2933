"""The satisfaction report (§6): survey answers of the cases resolved in a range.

Every resolved case invites a survey; a case counts once, in the period of its latest
resolution. CSAT is the share of answers that are satisfied (4 or 5 of 5), the response
rate the share of invited cases that answered. Read from the SLA tracker's cases, so the
figures group by the category, severity and agent the tracker knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from projections.sla.queries import Period

SATISFIED = 4  # scores of 4 and 5 count as satisfied (the usual CSAT)
# One pass over the range: the whole range, per period, and per category, severity and
# agent (GROUPING SETS); grouping() sets one bit per column a row leaves out, period's
# the highest (0b1111: the whole range, 0b0111: one period, ...).
_REPORT = (
    "SELECT grouping(period, category, severity, agent_id), period, category, severity, "
    "agent_id, count(*), count(satisfaction_score), "
    "count(*) FILTER (WHERE satisfaction_score >= %(satisfied)s), avg(satisfaction_score) "
    "FROM (SELECT date_trunc(%(period)s, resolved_at, 'UTC') AS period, category, "
    "coalesce(severity, 'unassessed') AS severity, coalesce(agent_id, 'unassigned') AS agent_id, "
    "satisfaction_score FROM casebook_sla_cases WHERE status = 'resolved' "
    "AND resolved_at >= %(since)s AND resolved_at < %(until)s) AS r "
    "GROUP BY GROUPING SETS ((), (period), (category), (severity), (agent_id)) "
    "ORDER BY 1, 2, 3, 4, 5"
)


@dataclass(frozen=True)
class Satisfaction:
    """Survey figures of a set of resolved cases."""

    invited: int
    answered: int
    satisfied: int
    mean_score: float | None

    @property
    def csat(self) -> float | None:
        return self.satisfied / self.answered if self.answered else None

    @property
    def response_rate(self) -> float | None:
        return self.answered / self.invited if self.invited else None


@dataclass
class SatisfactionReport:
    """The figures over [since, until), overall and by period, category, severity, agent."""

    period: Period
    since: datetime
    until: datetime
    total: Satisfaction = Satisfaction(0, 0, 0, None)
    by_period: dict[datetime, Satisfaction] = field(default_factory=dict)
    by_category: dict[str, Satisfaction] = field(default_factory=dict)
    by_severity: dict[str, Satisfaction] = field(default_factory=dict)
    by_agent: dict[str, Satisfaction] = field(default_factory=dict)


def satisfaction_report(
    conn: psycopg.Connection[Any], *, since: datetime, until: datetime, period: Period
) -> SatisfactionReport:
    """Survey answers of the cases whose latest resolution fell in [since, until)."""
    params = {"satisfied": SATISFIED, "period": period, "since": since, "until": until}
    with conn.cursor(row_factory=tuple_row) as cursor:
        rows = cursor.execute(_REPORT, params).fetchall()
    report = SatisfactionReport(period=period, since=since, until=until)
    for grouping, bucket, category, severity, agent, invited, answered, satisfied, mean in rows:
        figures = Satisfaction(invited, answered, satisfied, float(mean) if mean else None)
        if grouping == 0b1111:
            report.total = figures
        elif grouping == 0b0111:
            report.by_period[bucket] = figures
        elif grouping == 0b1011:
            report.by_category[category] = figures
        elif grouping == 0b1101:
            report.by_severity[severity] = figures
        else:
            report.by_agent[agent] = figures
    return report
