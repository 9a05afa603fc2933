"""Is the SLA tracker complete? Every case in the store has its row, at its last version.

The tracker follows every case: an `opened` event makes the case's row, and every case
event it applies sets the row's `version` to the event's sequence (the case's version),
in the transaction that records the consumer's progress. So a case whose row is missing,
or older than the case's last stored event, lacks events: not consumed yet, held by the
runtime, or never received (a broker that lost its topics). One set-based statement
compares the two, streamed by the server; only counts and the first few cases come back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.utils import get_topic
from psycopg.rows import dict_row

from consumers.holds import holds
from domain.cases import ServiceRequest

GROUP = "sla"
FIRST_BEHIND = 20
# Every stored event of a case has a topic under its aggregate's (`...:ServiceRequest.`).
_CASE_TOPICS = get_topic(ServiceRequest) + "."

# Rows are ordered with the cases that lag first, so the window counts cover every case
# while only the first few lagging ones are returned.
_BEHIND = """
WITH relay AS (
    SELECT coalesce(max(position), 0) AS position FROM casebook_relay_positions
), store AS (
    SELECT originator_id AS case_id, max(originator_version) AS last_version,
           max(notification_id) AS last_position
    FROM casebook_events
    WHERE starts_with(topic, %(topics)s) AND notification_id <= %(upto)s
    GROUP BY originator_id
), compared AS (
    SELECT s.case_id, s.last_version, c.version AS applied,
           s.last_position <= relay.position AS published,
           c.version IS NOT NULL AND c.version >= s.last_version AS current
    FROM store s CROSS JOIN relay LEFT JOIN casebook_sla_cases c USING (case_id)
)
SELECT case_id, last_version, applied, published, current,
       count(*) OVER () AS cases,
       count(*) FILTER (WHERE applied IS NULL) OVER () AS without_row,
       count(*) FILTER (WHERE NOT current AND applied IS NOT NULL) OVER () AS behind,
       count(*) FILTER (WHERE NOT current AND NOT published) OVER () AS unpublished
FROM compared ORDER BY current, case_id LIMIT %(limit)s
"""


@dataclass(frozen=True)
class LaggingCase:
    """A case the tracker has no row for, or a row older than the case's last event."""

    case_id: str
    last_version: int
    applied: int | None  # the row's version; None: no row
    published: bool  # False: the case's last event is not on the topic yet
    why: str | None = None

    def describe(self) -> str:
        if self.applied is None:
            text = f"case {self.case_id}: no SLA row (the store is at version {self.last_version})"
        else:
            text = (
                f"case {self.case_id}: SLA row at version {self.applied}, "
                f"the store at version {self.last_version}"
            )
        if not self.published:
            text += "; not published yet"
        return text + (f"; {self.why}" if self.why else "")


@dataclass(frozen=True)
class SlaCompleteness:
    """Cases checked, how many lag (no row, or behind), and the first few of them."""

    cases: int = 0
    without_row: int = 0
    behind: int = 0
    unpublished: int = 0  # of the lagging: their last event is not published yet
    first_lagging: tuple[LaggingCase, ...] = ()

    @property
    def complete(self) -> bool:
        return self.without_row == 0 and self.behind == 0

    def summary(self) -> str:
        if self.complete:
            return f"complete: all {self.cases} case(s) tracked at their last version"
        behind = f", {self.unpublished} not published yet" if self.unpublished else ""
        return (
            f"{self.without_row + self.behind} of {self.cases} case(s) not up to date: "
            f"{self.without_row} without an SLA row, {self.behind} behind{behind}"
        )


def store_position(conn: psycopg.Connection[Any]) -> int:
    """The newest stored event's position: a check up to it ignores events stored later."""
    row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM casebook_events").fetchone()
    return int(row[0]) if row else 0


def check(
    conn: psycopg.Connection[Any], *, upto: int | None = None, limit: int = FIRST_BEHIND
) -> SlaCompleteness:
    """Compare every case stored up to position `upto` (default: now) with its SLA row."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            _BEHIND,
            {
                "topics": _CASE_TOPICS,
                "upto": store_position(conn) if upto is None else upto,
                "limit": max(limit, 1),
            },
        ).fetchall()
    if not rows:
        return SlaCompleteness()
    lagging = [r for r in rows if not r["current"]]
    known = holds(conn, GROUP, {str(r["case_id"]) for r in lagging})
    return SlaCompleteness(
        cases=rows[0]["cases"],
        without_row=rows[0]["without_row"],
        behind=rows[0]["behind"],
        unpublished=rows[0]["unpublished"],
        first_lagging=tuple(
            LaggingCase(
                case_id=str(r["case_id"]),
                last_version=r["last_version"],
                applied=r["applied"],
                published=r["published"],
                why=known.why(str(r["case_id"])),
            )
            for r in lagging
        ),
    )
