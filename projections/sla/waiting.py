"""What the expected waiting time reads from the SLA tracker when a request opens.

Per severity of the request's category: the **queue ahead** (cases still waiting for
their first response, by the severity their clock runs on, the triage one included) and
the **first responses of the last `window_days`**: how many, and the median business time
from opening to first response of the most recent `MEDIAN_SAMPLE` of them, each on its
own clock's calendar. The domain (`domain.sla.waiting`) turns these into the promise.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.sla.business_time import elapsed
from domain.sla.waiting import WaitingObservation
from domain.values import Severity
from projections.sla.targets import Locale, TargetBook

MEDIAN_SAMPLE = 500  # the median needs no more; it keeps an opening's read short

_QUEUE = (
    "SELECT k.severity, count(*) AS waiting FROM casebook_sla_cases c "
    "JOIN casebook_sla_clocks k ON k.case_id = c.case_id AND k.metric = 'initial_response' "
    "WHERE c.category = %(category)s AND c.status <> 'resolved' "
    "AND c.first_response_at IS NULL AND c.opened_at <= %(now)s GROUP BY k.severity"
)
_RESPONSES = (
    "SELECT * FROM (SELECT k.severity, k.policy_version, c.opened_at, c.first_response_at, "
    "COALESCE(c.customer_timezone, o.timezone) AS timezone, "
    "COALESCE(c.customer_country, o.country) AS country, "
    "count(*) OVER (PARTITION BY k.severity) AS responses, "
    "row_number() OVER (PARTITION BY k.severity ORDER BY c.first_response_at DESC) AS n "
    "FROM casebook_sla_cases c "
    "JOIN casebook_sla_clocks k ON k.case_id = c.case_id AND k.metric = 'initial_response' "
    "LEFT JOIN casebook_sla_organisations o ON o.organisation_id = c.organisation_id "
    "WHERE c.category = %(category)s AND c.first_response_at >= %(since)s "
    "AND c.first_response_at <= %(now)s) r WHERE r.n <= %(sample)s"
)


def observe(
    conn: psycopg.Connection[Any],
    targets: TargetBook,
    *,
    category: str,
    now: datetime,
    window_days: int,
) -> dict[str, WaitingObservation]:
    """The observations for a request of `category` opening at `now`, by severity value."""
    since = now - timedelta(days=window_days)
    params = {"category": category, "now": now, "since": since, "sample": MEDIAN_SAMPLE}
    with conn.cursor(row_factory=dict_row) as cursor:
        queue = {r["severity"]: r["waiting"] for r in cursor.execute(_QUEUE, params)}
        rows = cursor.execute(_RESPONSES, params).fetchall()
    counts: dict[str, int] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        counts[row["severity"]] = row["responses"]
        seconds = _business_seconds(targets, category, row)
        if seconds is not None:
            durations[row["severity"]].append(seconds)
    return {
        severity.value: WaitingObservation(
            queue_ahead=queue.get(severity.value, 0),
            responses=counts.get(severity.value, 0),
            median_seconds=(
                statistics.median(durations[severity.value]) if durations[severity.value] else None
            ),
            window_start=since,
            window_days=window_days,
        )
        for severity in Severity
    }


def _business_seconds(targets: TargetBook, category: str, row: dict[str, Any]) -> float | None:
    """Opening to first response in business time on the case's own calendar; None when
    that calendar is unknown here (an archived policy missing, no locale)."""
    locale = Locale(row["timezone"], row["country"]) if row["timezone"] else None
    try:
        target = targets.initial(row["policy_version"], category, row["severity"], locale)
    except LookupError:
        return None
    return elapsed(row["opened_at"], row["first_response_at"], target.calendar).total_seconds()
