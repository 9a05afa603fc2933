"""Helpers shared by the relay tests: a relay on a thread, store and record look-ups."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from casebook.database import Database
from relay.relay import Relay


def wait_for(condition: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


class RunningRelay:
    """A relay on its own thread, stopped on request."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.stop = threading.Event()
        self.thread = threading.Thread(target=relay.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the relay did not stop"


def last_position(database: Database) -> int:
    """The notification id of the last stored event (0 when none)."""
    with psycopg.connect(database.url) as conn:
        row = conn.execute("SELECT max(notification_id) FROM casebook_events").fetchone()
    return int(row[0] or 0) if row else 0


def stored_ids(database: Database) -> set[str]:
    """The `ce_id` every stored event must be published under."""
    with psycopg.connect(database.url) as conn:
        rows = conn.execute("SELECT originator_id, originator_version FROM casebook_events")
        return {f"{originator}:{version}" for originator, version in rows}


def headers(record: Any) -> dict[str, str]:
    """A consumed record's headers as text."""
    return {name: value.decode() for name, value in record.headers}
