"""`casebook relay`: publish the event store to Kafka until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from casebook.cli.db import command_database
from casebook.cli.kafka import required_brokers
from casebook.logging import configure_logging
from casebook.settings import get_settings

if TYPE_CHECKING:
    pass


def relay_command() -> None:
    """Follow the event store and publish it to Kafka (standby while another relay leads)."""
    settings = get_settings()
    configure_logging(settings)
    bootstrap = required_brokers(settings, "`casebook run` starts a local broker instead")
    from casebook.application import EventStore
    from casebook.store import eventsourcing_env
    from relay.relay import Relay

    with command_database(settings) as db:
        store = EventStore(env=eventsourcing_env(db, settings))
        try:
            relay = Relay(store, db, settings, bootstrap_servers=bootstrap)
            with stop_on_signals() as stop:
                relay.run(stop)
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


@contextmanager
def background_relay(
    casebook: object, db: object, settings: object, bootstrap: str
) -> Iterator[None]:
    """Run a relay on a thread beside the API (what `casebook run` does)."""
    from relay.relay import Relay

    relay = Relay(casebook.store, db, settings, bootstrap_servers=bootstrap)  # type: ignore[attr-defined,arg-type]
    relay.ensure_topic()
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), name="casebook-relay", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=15)
