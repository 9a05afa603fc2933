"""The SLA timer: turns clocks at risk and breached when their time comes, no event needed.

Each tick advances the clocks whose `next_due_at` has passed (an index keeps that cheap
with any number of open clocks) in one statement (`due.py`) that saves the clocks and
their transitions with their true instants, so after downtime a breach is recorded at
its deadline, not at the moment it was noticed. Rows the consumer is changing are
skipped (SKIP LOCKED) and taken on the next tick.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog

from casebook.supervision import report_lag, report_trouble
from projections.sla.due import advance_due

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
                    if conn.closed:
                        raise  # the server went away: its supervisor reconnects
                    log.warning("sla.timer.tick_failed", error=str(error).splitlines()[0])
                    report_trouble(error)
                    conn.rollback()
                else:
                    report_lag(0)

    def tick(self, conn: psycopg.Connection[Any]) -> int:
        """Advance every clock due by now; the number of transitions made."""
        now = self._clock()
        made: Counter[str] = Counter()
        while True:
            with conn.transaction():
                step = advance_due(conn, now, self._batch)
            made += step.made
            if step.taken < self._batch or not step.made:  # (none moved: only orphans due)
                break
        if made:
            # One line per tick: a catch-up can mark thousands of clocks, each of which
            # is in the clock history and on the SLA-events topic anyway.
            log.info("sla.timer.marked", **made)
        return made.total()
