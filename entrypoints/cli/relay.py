"""`casebook relay`: publish the event store to Kafka until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from casebook.settings import Settings, get_settings
from casebook.supervision import Part, supervised
from entrypoints.background import backoff, run_standalone
from entrypoints.cli.db import command_database
from entrypoints.cli.kafka import required_brokers
from entrypoints.logging import configure_logging

if TYPE_CHECKING:
    from casebook.application import Casebook
    from casebook.database import Database


def relay_command() -> None:
    """Follow the event store and publish it to Kafka (standby while another relay leads)."""
    settings = get_settings()
    configure_logging(settings)
    bootstrap = required_brokers(settings, "`casebook run` starts a local broker instead")
    from casebook.event_store import EventStore
    from relay.relay import Relay

    # Outermost: a signal while the database stops is noted, not a KeyboardInterrupt.
    with stop_on_signals() as stop, command_database(settings, waiting=stop) as db:
        store = EventStore.open(db, settings)
        try:
            relay = Relay(store, db, settings, bootstrap_servers=bootstrap)
            run_standalone("relay", {"relay": relay.run}, stop, settings, db.url)
        finally:
            store.close()


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, so the current round finishes cleanly."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def relay_beside_api(casebook: Casebook, db: Database, settings: Settings, bootstrap: str) -> Part:
    """A relay, its topic made, supervised, to run beside the API (what `casebook run` does)."""
    from relay.relay import Relay

    relay = Relay(casebook.store, db, settings, bootstrap_servers=bootstrap)
    relay.ensure_topic()
    return supervised("relay", relay.run, backoff(settings))
