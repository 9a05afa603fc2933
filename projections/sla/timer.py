"""The SLA timer: turns clocks at risk and breached when their time comes, no event needed.

Each tick takes the clocks whose `next_due_at` has passed (an index keeps that cheap
with any number of open clocks), advances them to now, and saves the transitions with
their true instants, so after downtime a breach is recorded at its deadline, not at the
moment it was noticed. Rows the consumer is changing are skipped (SKIP LOCKED) and
taken on the next tick.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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
                rows = conn.execute(
                    f"SELECT {_PREFIXED}, c.organisation_id, c.category "
                    "FROM casebook_sla_clocks k JOIN casebook_sla_cases c USING (case_id) "
                    "WHERE k.next_due_at <= %s ORDER BY k.next_due_at LIMIT %s "
                    "FOR UPDATE OF k SKIP LOCKED",
                    (now, self._batch),
                ).fetchall()
                transitions: list[Transition] = []
                clocks = []
                cases: dict[str, tuple[str, str]] = {}
                for row in rows:
                    clock = store.clock_from_row(row)
                    moved = advance(clock, now)
                    if moved:
                        transitions.extend(moved)
                        clocks.append((moved[-1].clock, row[-1]))
                        cases[clock.case_id] = (str(row[-2]), row[-1])
                with conn.cursor() as cursor:
                    store.save_clocks(cursor, clocks)
                    store.save_transitions(cursor, transitions, cases)
            made += len(transitions)
            for t in transitions:
                log.info(
                    f"sla.clock.{t.change.value}",
                    case_id=t.clock.case_id,
                    metric=t.clock.metric.value,
                    at=t.at.isoformat(),
                )
            if len(rows) < self._batch:
                return made


_PREFIXED = ", ".join(f"k.{column.strip()}" for column in store.CLOCK_COLUMNS.split(","))
