"""The read models the API serves beside the write side: their connections and readers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from api.metrics import forget_pool, watch_pool
from casebook.database import Database
from domain.sla.waiting import WaitingObservation
from projections.audit import queries as audit
from projections.audit.completeness import check as check_completeness
from projections.audit.verify import Verification, verify_case, verify_log
from projections.sla import waiting
from projections.sla.queries import SlaReader
from projections.sla.targets import TargetBook


class ReadModels:
    """A small connection pool (opened on first use) and the SLA reader."""

    def __init__(
        self,
        database: Database,
        targets: TargetBook,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_size: int = 4,
    ) -> None:
        self.sla = SlaReader(targets)
        self.clock = clock
        self._url = database.url
        self._max_size = max_size
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool_in_use().connection() as conn:
            yield conn

    def record_access(self, access: audit.Access) -> int:
        """Write one access record in a short transaction of its own; its id."""
        with self.connection() as conn, conn.transaction():
            return audit.record_access(conn, access)

    def waiting(self, category: str, window_days: int) -> dict[str, WaitingObservation]:
        """What the SLA tracker sees now for a request of `category`, by severity: the
        queue ahead and the recent first responses the promised wait is estimated from."""
        with self.connection() as conn:
            return waiting.observe(
                conn, category=category, now=self.clock(), window_days=window_days
            )

    def audit_timeline(self, case_id: str) -> list[dict[str, Any]]:
        """The case's audit entries (case and SLA streams) in the order things happened."""
        with self.connection() as conn:
            return audit.timeline(conn, case_id)

    def verify(self, case_id: str | None) -> Verification:
        """Verify the case's chains, or the whole log when `case_id` is None, and check
        them complete against the store."""
        with self.connection() as conn:
            completeness = check_completeness(conn, case_id=case_id)
            result = verify_case(conn, case_id) if case_id is not None else verify_log(conn)
        result.completeness = completeness
        return result

    def access_records(
        self, where: audit.AccessFilter, *, limit: int, after: int | None
    ) -> list[dict[str, Any]]:
        """One page of access records, oldest first."""
        with self.connection() as conn:
            return audit.access_records(conn, where, limit=limit, after=after)

    def close(self) -> None:
        """Release the connections; a later read opens a new pool (an app may restart)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            forget_pool(pool)
            pool.close()

    def _pool_in_use(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self._url, min_size=1, max_size=self._max_size, name="read-models", open=True
                )
                watch_pool(self._pool)
            return self._pool
