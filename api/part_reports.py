"""The board of this process, copied to PostgreSQL so other processes can read it.

`casebook consumers status` runs in a terminal of its own: it sees the relay and the
consumers of other processes only through `casebook_part_status`. Each process upserts
its rows every few seconds and removes them when it stops; a row not refreshed for a
while belongs to a process that died without saying so, and is shown as such.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog

from casebook.errors import first_line
from casebook.supervision import BOARD, Board, PartStatus

log = structlog.get_logger("casebook.parts")
REPORT_INTERVAL_S = 2.0
# A row older than this many intervals is from a process that stopped reporting.
STALE_AFTER_INTERVALS = 5

_COLUMNS = (
    "process, part, state, since, restarts, failures, lag, last_error, last_error_at,"
    " failing_since, trouble"
)


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class PartReporter:
    """Copies the board to `casebook_part_status` until stopped; then deletes its rows."""

    def __init__(
        self,
        database_url: str,
        unhealthy_s: float,
        *,
        board: Board = BOARD,
        interval_s: float = REPORT_INTERVAL_S,
    ) -> None:
        self._url = database_url
        self._unhealthy_s = unhealthy_s
        self._board = board
        self._interval = interval_s
        self.process = this_process()
        self._failing = False

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval):
            self._try(self._save)
        self._try(self._delete)

    def _try(self, write: Any) -> None:
        # The database may be down: the parts say so on the board and in the log; this
        # copy just waits for it to come back, logging the outage once.
        try:
            with psycopg.connect(self._url, connect_timeout=3) as conn:
                write(conn)
        except psycopg.Error as error:
            if not self._failing:
                log.warning("parts.report.failed", error=first_line(error))
            self._failing = True
            return
        if self._failing:
            log.info("parts.report.resumed")
        self._failing = False

    def _save(self, conn: psycopg.Connection[Any]) -> None:
        now = datetime.now(UTC)
        rows = [self._row(status, status.trouble(now, self._unhealthy_s))
                for status in self._board.snapshot()]  # fmt: skip
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO casebook_part_status ({_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (process, part) DO UPDATE SET state = EXCLUDED.state,"
                " since = EXCLUDED.since, restarts = EXCLUDED.restarts,"
                " failures = EXCLUDED.failures, lag = EXCLUDED.lag,"
                " last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at,"
                " failing_since = EXCLUDED.failing_since, trouble = EXCLUDED.trouble,"
                " reported_at = now()",
                rows,
            )

    def _delete(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("DELETE FROM casebook_part_status WHERE process = %s", (self.process,))

    def _row(self, status: PartStatus, trouble: str | None) -> tuple[object, ...]:
        return (
            self.process, status.name, status.state.value, status.since, status.restarts,
            status.failures, status.lag, status.last_error, status.last_error_at,
            status.failing_since, trouble,
        )  # fmt: skip


@dataclass(frozen=True)
class ReportedPart:
    """One row of `casebook_part_status`, with how old it is."""

    process: str
    part: str
    state: str
    since: datetime
    restarts: int
    failures: int
    lag: int | None
    last_error: str | None
    last_error_at: datetime | None
    failing_since: datetime | None
    trouble: str | None
    age_s: float

    @property
    def stale(self) -> bool:
        return self.age_s > STALE_AFTER_INTERVALS * REPORT_INTERVAL_S


def reported_parts(conn: psycopg.Connection[Any]) -> list[ReportedPart]:
    """Every part every process last reported, by process and part."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, extract(epoch FROM now() - reported_at)::float8"
        " FROM casebook_part_status ORDER BY process, part"
    ).fetchall()
    return [ReportedPart(*row) for row in rows]
