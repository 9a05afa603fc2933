"""Prometheus metrics read from PostgreSQL at scrape time: the pipeline as stored.

Relay lag (the event store's last notification id minus each relay's acknowledged
position), consumer lag and open dead letters per group, SLA clocks at risk or breached
by severity, the age of the audit log's latest checkpoint. One short connection per
scrape with a statement timeout: when the database does not answer, the scrape still
succeeds with the in-memory metrics and `casebook_metrics_database_up 0`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumers.state import statuses
from domain.sla.clock import State

log = structlog.get_logger("casebook.metrics")
TIMEOUT_S = 2  # libpq's connect_timeout has a floor of 2 s

RELAY_LAG = """
SELECT r.relay, greatest(e.last - r.position, 0) AS lag
  FROM casebook_relay_positions r,
       (SELECT coalesce(max(notification_id), 0) AS last FROM casebook_events) e
 ORDER BY r.relay
"""
OPEN_DEAD_LETTERS = """
SELECT consumer_group, count(*) AS open
  FROM casebook_consumer_dead_letters WHERE resolution IS NULL
 GROUP BY consumer_group ORDER BY consumer_group
"""
CLOCKS_IN_TROUBLE = """
SELECT severity, state, count(*) AS clocks
  FROM casebook_sla_clocks WHERE state = ANY(%s)
 GROUP BY severity, state ORDER BY severity, state
"""
CHECKPOINT_AGE = """
SELECT extract(epoch FROM now() - max(created_at))::float8 AS age FROM casebook_audit_checkpoints
"""
TROUBLE_STATES = (State.AT_RISK, State.BREACHED)


class DatabaseCollector(Collector):
    """The stored state of the pipeline, read from the database at `url` on each scrape."""

    def __init__(self, url: str, *, timeout_s: int = TIMEOUT_S) -> None:
        self._url = url
        self._timeout_s = timeout_s

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "casebook_metrics_database_up",
            "1 when the database answered this scrape's queries, else 0 (its metrics absent).",
        )
        try:
            with psycopg.connect(
                self._url,
                connect_timeout=self._timeout_s,
                options=f"-c statement_timeout={self._timeout_s * 1000}",
                autocommit=True,
            ) as conn:
                families = _read(conn)
        except psycopg.Error as error:
            log.warning("metrics.database.failed", error=type(error).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]


def _read(conn: psycopg.Connection[Any]) -> list[Metric]:
    relay_lag = GaugeMetricFamily(
        "casebook_relay_lag",
        "Stored events a relay has not had acknowledged yet (last notification id minus "
        "its position).",
        labels=["relay"],
    )
    for relay, lag in conn.execute(RELAY_LAG).fetchall():
        relay_lag.add_metric([relay], lag)

    consumer_lag = GaugeMetricFamily(
        "casebook_consumer_lag",
        "Records a consumer group has yet to apply, summed over its members' last reports "
        "(absent until a member has partitions).",
        labels=["group"],
    )
    by_group: dict[str, int] = {}
    for member in statuses(conn):
        if member.lag is not None:  # None: no partitions yet, so no lag to tell
            by_group[member.group] = by_group.get(member.group, 0) + member.lag
    for group, lag in sorted(by_group.items()):
        consumer_lag.add_metric([group], lag)

    dead_letters = GaugeMetricFamily(
        "casebook_consumer_dead_letters",
        "Dead letters of a consumer group not yet replayed or skipped.",
        labels=["group"],
    )
    for group, count in conn.execute(OPEN_DEAD_LETTERS).fetchall():
        dead_letters.add_metric([group], count)

    clocks = GaugeMetricFamily(
        "casebook_sla_clocks",
        "SLA clocks now at risk or breached, by severity and state.",
        labels=["severity", "state"],
    )
    states = [state.value for state in TROUBLE_STATES]
    for severity, state, count in conn.execute(CLOCKS_IN_TROUBLE, (states,)).fetchall():
        clocks.add_metric([severity, state], count)

    families: list[Metric] = [relay_lag, consumer_lag, dead_letters, clocks]
    age = conn.execute(CHECKPOINT_AGE).fetchone()
    if age is not None and age[0] is not None:
        checkpoint = GaugeMetricFamily(
            "casebook_audit_checkpoint_age_seconds",
            "Seconds since the audit log's latest signed checkpoint (absent before the first).",
        )
        checkpoint.add_metric([], age[0])
        families.append(checkpoint)
    return families
