"""One active publisher: the relay holding a PostgreSQL advisory lock publishes.

The lock belongs to a database session, so when the active relay dies its connection
closes, the lock is released, and a standby relay polling for it takes over.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import structlog

from casebook.supervision import report_standby

log = structlog.get_logger("casebook.relay")
POLL_SECONDS = 1.0


def lock_key(relay_name: str) -> int:
    """A stable 32-bit lock key per relay name (several relays of one name share it)."""
    return zlib.crc32(f"casebook-relay:{relay_name}".encode())


class Leadership:
    """A held advisory lock and the session that holds it."""

    def __init__(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        self._connection = connection

    def still_held(self) -> bool:
        """False once the session holding the lock is gone."""
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True


@contextmanager
def leadership(url: str, relay_name: str, stop: threading.Event) -> Iterator[Leadership | None]:
    """Wait until this process holds the lock (yield it) or `stop` is set (yield None)."""
    key = lock_key(relay_name)
    with psycopg.connect(url, autocommit=True) as connection:
        waiting_logged = False
        while not stop.is_set():
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row and row[0]:
                log.info("relay.leadership.acquired", relay=relay_name)
                try:
                    yield Leadership(connection)
                finally:
                    log.info("relay.leadership.released", relay=relay_name)
                return
            if not waiting_logged:
                log.info("relay.standby", relay=relay_name, reason="another relay publishes")
                waiting_logged = True
            report_standby()
            stop.wait(POLL_SECONDS)
        yield None
