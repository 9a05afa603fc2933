"""The timer's statement: every due clock advanced inside PostgreSQL, in one statement
(after two short ones that lock the due clocks and their cases' outbox numbering).

The SQL twin of the one clock model: `domain.sla.clock.advance` is the rule, and this is
the same rule written in SQL for the timer, whose tick must stay short however many
clocks fall due at once (a catch-up after downtime marks thousands, and a round trip per
row or a Python object per clock would cost more than the writes themselves).
`tests/integration/test_sla_due.py` holds the two equal: the clock after, its history
rows and its outbox events, payloads included.

Per clock the statement makes what `advance` makes: at risk at `at_risk_at` when that has
come, then breached at the deadline when that has come too, each numbered and stamped
with its true instant; the payload is `events.ClockEvent` as JSON, datetimes in UTC
written the way pydantic writes them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from projections.sla.store import lock_outbox_subjects


@dataclass(frozen=True)
class Advanced:
    """What one statement did: clocks it took (locked, due) and transitions it made."""

    taken: int
    made: Counter[str]


def _utc_text(column: str) -> str:
    """SQL for pydantic's JSON form of an aware datetime: UTC, 'Z', microseconds if any."""
    return (
        f"replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "'.000000Z', 'Z')"
    )


_PAYLOAD = (
    "jsonb_build_object("
    "'case_id', m.case_id::text, 'organisation_id', m.organisation_id::text, "
    "'category', m.category, 'metric', m.metric, 'change', m.change, "
    f"'at', {_utc_text('m.at')}, 'reason', m.reason, 'state', m.new_state, "
    "'severity', m.severity, 'policy_version', m.policy_version, "
    f"'started_at', {_utc_text('m.started_at')}, 'deadline', {_utc_text('m.deadline')}, "
    f"'at_risk_at', {_utc_text('m.at_risk_at')}, 'met_at', {_utc_text('m.met_at')}, "
    f"'breached_at', {_utc_text('m.new_breached_at')}, "
    f"'stopped_at', {_utc_text('m.stopped_at')}, 'provisional', m.provisional, "
    "'assessed', m.assessed)"
)

# The due clocks are locked first on their own (MATERIALIZED): joined with the cases in
# one query, the planner misjudges how many are due and scans every case. A clock whose
# case row is missing is taken but not moved, as the consumer's join would have it.
_ADVANCE_DUE = f"""
WITH taken AS MATERIALIZED (
    SELECT case_id, metric, severity, category, policy_version, started_at, deadline,
           at_risk_at, provisional, state, met_at, breached_at, stopped_at, transitions,
           next_due_at, assessed
    FROM casebook_sla_clocks
    JOIN unnest(%(cases)s::uuid[], %(metrics)s::text[]) AS l(case_id, metric)
        USING (case_id, metric)
), due AS (
    SELECT t.*, c.organisation_id
    FROM taken t JOIN casebook_sla_cases c USING (case_id)
    WHERE t.state NOT IN ('met', 'stopped') AND t.stopped_at IS NULL
      AND t.deadline IS NOT NULL AND t.at_risk_at IS NOT NULL
), moves AS (
    SELECT d.*, 'at_risk' AS change, d.at_risk_at AS at, 'at-risk share used' AS reason,
           'at_risk' AS new_state, d.breached_at AS new_breached_at,
           d.transitions + 1 AS number
    FROM due d
    WHERE d.state = 'running' AND d.at_risk_at <= %(now)s
    UNION ALL
    SELECT d.*, 'breached', d.deadline, 'deadline passed', 'breached', d.deadline,
           d.transitions + CASE WHEN d.state = 'running' THEN 2 ELSE 1 END
    FROM due d
    WHERE d.deadline <= %(now)s
      AND (d.state = 'at_risk' OR (d.state = 'running' AND d.at_risk_at <= %(now)s))
), numbered AS (
    SELECT m.*, m.case_id::text || ':' || m.metric || ':' || m.number AS event_id
    FROM moves m
), saved AS (
    UPDATE casebook_sla_clocks k
    SET state = l.new_state, breached_at = l.new_breached_at, transitions = l.number,
        next_due_at = CASE WHEN l.new_state = 'at_risk' THEN l.deadline END
    FROM (
        SELECT DISTINCT ON (case_id, metric) * FROM numbered
        ORDER BY case_id, metric, number DESC
    ) l
    WHERE k.case_id = l.case_id AND k.metric = l.metric
), history AS (
    INSERT INTO casebook_sla_clock_history (event_id, case_id, metric, change, at, reason,
        state, severity, policy_version, deadline, at_risk_at)
    SELECT event_id, case_id, metric, change, at, reason, new_state, severity,
           policy_version, deadline, at_risk_at
    FROM numbered
    ON CONFLICT DO NOTHING
), published AS (
    -- In due order, each clock's events in theirs: the outbox publishes by id; each
    -- case's sequence goes on from its last row in the same order (store.py's locks).
    INSERT INTO casebook_sla_outbox (event_id, type, subject, time, payload, sequence)
    SELECT m.event_id, 'casebook.sla.clock_' || m.change || '.v1', m.case_id::text, m.at,
           {_PAYLOAD},
           coalesce((SELECT max(o.sequence) FROM casebook_sla_outbox o
                     WHERE o.subject = m.case_id::text), 0)
           + row_number() OVER (PARTITION BY m.case_id
                                ORDER BY m.next_due_at, m.metric, m.number)
    FROM numbered m
    WHERE NOT EXISTS (SELECT 1 FROM casebook_sla_outbox o WHERE o.event_id = m.event_id)
    ORDER BY m.next_due_at, m.case_id, m.metric, m.number
)
SELECT (SELECT count(*) FROM taken), change, count(*)
FROM (SELECT change FROM numbered UNION ALL SELECT NULL) AS made
GROUP BY change
"""


# Taken first, in a statement of their own: the outbox locks come next (store.py), and
# only a statement after both sees every SLA event of those cases to number on from.
_TAKE_DUE = """
SELECT case_id, metric FROM casebook_sla_clocks
WHERE next_due_at <= %(now)s
ORDER BY next_due_at
LIMIT %(batch)s
FOR UPDATE SKIP LOCKED
"""


def advance_due(conn: psycopg.Connection[Any], now: datetime, batch: int) -> Advanced:
    """Advance up to `batch` clocks due by `now` (skipping locked ones), in the caller's
    transaction."""
    keys = conn.execute(_TAKE_DUE, {"now": now, "batch": batch}).fetchall()
    if not keys:
        return Advanced(0, Counter())
    cases = [case_id for case_id, _ in keys]
    with conn.cursor() as cursor:
        lock_outbox_subjects(cursor, sorted({str(case_id) for case_id in cases}))
    params = {"now": now, "cases": cases, "metrics": [metric for _, metric in keys]}
    rows = conn.execute(_ADVANCE_DUE, params).fetchall()
    taken = rows[0][0] if rows else 0
    return Advanced(taken, Counter({change: n for _, change, n in rows if change is not None}))
