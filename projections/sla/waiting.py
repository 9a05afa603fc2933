"""What the expected waiting time reads from the SLA tracker when a request opens.

Per severity of the request's category: the **queue ahead** (cases still waiting for
their first response, by the severity their clock runs on, the triage one included) and
the **first responses of the last `window_days`**: how many, and their median business
time from opening to first response (each on its own case's calendar, computed by the
projection when the response came). The domain (`domain.sla.waiting`) turns these into
the promise. Two indexed queries (migration 0017), no calendar work at opening.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.sla.waiting import WaitingObservation
from domain.values import Severity

_INITIAL_CLOCK = (
    "JOIN casebook_sla_clocks k ON k.case_id = c.case_id AND k.metric = 'initial_response' "
)
_QUEUE = (
    f"SELECT k.severity, count(*) AS waiting FROM casebook_sla_cases c {_INITIAL_CLOCK}"
    "WHERE c.category = %(category)s AND c.status <> 'resolved' "
    "AND c.first_response_at IS NULL AND c.opened_at <= %(now)s GROUP BY k.severity"
)
# percentile_cont leaves out cases answered before the projection kept business time.
_RESPONSES = (
    "SELECT k.severity, count(*) AS responses, percentile_cont(0.5) WITHIN GROUP "
    "(ORDER BY c.first_response_business_seconds) AS median "
    f"FROM casebook_sla_cases c {_INITIAL_CLOCK}"
    "WHERE c.category = %(category)s AND c.first_response_at >= %(since)s "
    "AND c.first_response_at <= %(now)s GROUP BY k.severity"
)


def observe(
    conn: psycopg.Connection[Any], *, category: str, now: datetime, window_days: int
) -> dict[str, WaitingObservation]:
    """The observations for a request of `category` opening at `now`, by severity value."""
    since = now - timedelta(days=window_days)
    params = {"category": category, "now": now, "since": since}
    with conn.cursor(row_factory=dict_row) as cursor:
        queue = {r["severity"]: r["waiting"] for r in cursor.execute(_QUEUE, params)}
        responses = {r["severity"]: r for r in cursor.execute(_RESPONSES, params)}
    observations = {}
    for severity in Severity:
        seen = responses.get(severity.value)
        observations[severity.value] = WaitingObservation(
            queue_ahead=queue.get(severity.value, 0),
            responses=seen["responses"] if seen else 0,
            median_seconds=seen["median"] if seen else None,
            window_start=since,
            window_days=window_days,
        )
    return observations
