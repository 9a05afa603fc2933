"""The SLA timer: turns clocks at risk and breached when their time comes, no event needed.

Each tick takes the clocks whose `next_due_at` has passed (an index keeps that cheap
with any number of open clocks), advances them to now, and saves the transitions with
their true instants, so after downtime a breach is recorded at its deadline, not at the
moment it was noticed. Rows the consumer is changing are skipped (SKIP LOCKED) and
taken on the next tick.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import structlog

from projections.sla import store
from projections.sla.clocks import Transition, advance

log = structlog.get_logger("casebook.sla.timer")
TICK_SECONDS = 0.25
BATCH = 5000


def utc_now() -> datetime:
    return datetime.now(UTC)


class SlaTimer:
    """Advances due clocks every `interval` seconds; `clock` is injectable for tests."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        interval: float = TICK_SECONDS,
        batch: int = BATCH,
    ) -> None:
        self._url = url
        self._clock = clock
        self._interval = interval
        self._batch = batch

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set; a failed tick is logged and tried again."""
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not stop.wait(self._interval):
                try:
                    self.tick(conn)
                except psycopg.Error as error:
                    log.warning("sla.timer.tick_failed", error=str(error).splitlines()[0])
                    conn.rollback()

    def tick(self, conn: psycopg.Connection[Any]) -> int:
        """Advance every clock due by now; the number of transitions made."""
        now = self._clock()
        made = 0
        while True:
            with conn.transaction():
                # The due clocks alone first: joined with the cases in one query, the
                # planner misjudges how many are due and scans every case.
                rows = conn.execute(
                    f"SELECT {store.CLOCK_COLUMNS} FROM casebook_sla_clocks "
                    "WHERE next_due_at <= %s ORDER BY next_due_at LIMIT %s "
                    "FOR UPDATE SKIP LOCKED",
                    (now, self._batch),
                ).fetchall()
                cases = _cases_of(conn, {row[0] for row in rows})
                transitions: list[Transition] = []
                clocks = []
                for row in rows:
                    clock = store.clock_from_row(row)
                    case = cases.get(clock.case_id)
                    if case is None:  # the join's rule: a clock needs its case row
                        continue
                    moved = advance(clock, now)
                    if moved:
                        transitions.extend(moved)
                        clocks.append(moved[-1].clock)
                with conn.cursor() as cursor:
                    store.save_advanced(cursor, clocks)
                    store.save_transitions(cursor, transitions, cases)
            made += len(transitions)
            _log_marked(transitions)
            if len(rows) < self._batch or not clocks:  # (none moved: only orphans were due)
                return made


def _log_marked(transitions: list[Transition]) -> None:
    """One line per tick that marked anything: a catch-up can mark thousands of clocks,
    each of which is in the clock history and on the SLA-events topic anyway."""
    if transitions:
        log.info("sla.timer.marked", **Counter(t.change.value for t in transitions))


def _cases_of(conn: psycopg.Connection[Any], case_ids: set[UUID]) -> dict[str, tuple[str, str]]:
    """(organisation, category) of each case, by case id (sent as a binary uuid array)."""
    if not case_ids:
        return {}
    rows = conn.execute(
        "SELECT case_id, organisation_id, category FROM casebook_sla_cases "
        "WHERE case_id = ANY(%b::uuid[])",
        (list(case_ids),),
    ).fetchall()
    return {str(case_id): (str(organisation), category) for case_id, organisation, category in rows}
