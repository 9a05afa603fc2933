"""Parts that run on threads until told to stop, stopped together against one deadline.

A part is any `run(stop)`: the relay, a consumer, a timer, an outbox publisher, or a
whole service made of such parts. Stopping them one after another, each with its own
join timeout, adds their worst cases up; here every part is told first, then all are
awaited until one shared deadline, so a stop takes as long as the slowest part.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

import structlog

from api.metrics import registry_with
from api.part_reports import PartReporter
from casebook.settings import Settings
from casebook.supervision import BOARD, Backoff, Part, supervised

log = structlog.get_logger("entrypoints.background")
# How long the parts may take to finish what they hold once told to stop. Every part
# notices its stop event within about a second and then finishes one batch; casebook
# promises to be gone within 5 s of Ctrl-C, the broker and the database stop after.
STOP_SECONDS = 3.0


def backoff(settings: Settings) -> Backoff:
    """How parts are restarted after a failure, from the settings."""
    return Backoff(max_s=settings.part_retry_max_seconds)


class Parts:
    """Threads started together; `stop` tells them all, `join` awaits them to one deadline."""

    def __init__(self) -> None:
        self._running: list[tuple[str, threading.Event, threading.Thread]] = []
        self._deadline: float | None = None

    def start(self, name: str, target: Part, stop: threading.Event | None = None) -> None:
        """Run `target(stop)` on a daemon thread named `name` (a fresh stop event if none)."""
        stop = stop or threading.Event()
        thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
        thread.start()
        self._running.append((name, stop, thread))

    def stop(self) -> None:
        """Tell every part to stop; the shared deadline starts at the first call."""
        if self._deadline is None:
            self._deadline = time.monotonic() + STOP_SECONDS
        for _, stop, _ in self._running:
            stop.set()

    def join(self, grace: float = 0.0) -> list[str]:
        """Wait for every part until the deadline (plus `grace`); the names still running."""
        self.stop()
        assert self._deadline is not None
        for _, _, thread in self._running:
            thread.join(max(0.0, self._deadline + grace - time.monotonic()))
        late = [name for name, _, thread in self._running if thread.is_alive()]
        if late:
            # Daemon threads: the process exits without them. Each part's work is stored
            # in transactions, so an unfinished one is rolled back and done again later.
            log.warning("background.stop.late", parts=late, waited_s=STOP_SECONDS + grace)
        return late


def run_parts(
    service: str, parts: Mapping[str, Part], stop: threading.Event, backoff: Backoff
) -> None:
    """Run each part, supervised, on its thread until `stop` is set; then stop them all.

    A failing part is started again by its supervisor (`casebook.supervision`) while the
    others go on: one consumer losing its database connection must not stop the timer.
    """
    running = Parts()
    for name, target in parts.items():
        running.start(name, supervised(name, target, backoff), stop)
    log.info(f"{service}.started", parts=list(parts))
    stop.wait()
    running.join()
    log.info(f"{service}.stopped")


@contextmanager
def serve_metrics(settings: Settings, url: str) -> Iterator[int | None]:
    """This process's metrics (parts, pools, the database's figures) on `metrics_port`
    at `api_host` for the block; yields the port (None when unset: nothing served)."""
    if settings.metrics_port is None:
        yield None
        return
    from prometheus_client import start_http_server

    from projections.metrics import DatabaseCollector

    registry = registry_with(DatabaseCollector(url))
    server, thread = start_http_server(
        settings.metrics_port, addr=settings.api_host, registry=registry
    )
    log.info("metrics.serving", host=settings.api_host, port=server.server_port)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=1)


class OutageTooLong(Exception):
    """A part of a standalone process kept failing past `outage_limit_seconds`."""


def run_standalone(
    service: str, parts: Mapping[str, Part], stop: threading.Event, settings: Settings, url: str
) -> None:
    """`run_parts` for a process of its own (`casebook relay`, `consume ...`).

    Beside the parts: a copy of their board in the database, for `casebook consumers
    status`, and a watch that ends the process when a part has failed for longer than
    `outage_limit_seconds`, so that its supervisor (systemd, Kubernetes) takes over.
    With `metrics_port`, its metrics on that port (`serve_metrics`).
    """
    gave_up: list[str] = []

    def watch_outages(_: threading.Event) -> None:
        while not stop.wait(1.0):
            now = datetime.now(UTC)
            for status in BOARD.snapshot():
                failing = status.failing_for(now)
                if failing > settings.outage_limit_seconds:
                    log.error(
                        "part.outage.limit",
                        part=status.name,
                        failing_s=round(failing),
                        last_error=status.last_error,
                    )
                    gave_up.append(
                        f"{status.name} failed for {failing:.0f} s (outage_limit_seconds"
                        f" {settings.outage_limit_seconds:g}): {status.last_error}"
                    )
                    stop.set()
                    return

    companions = Parts()
    companions.start("part-reports", PartReporter(url, settings.part_unhealthy_seconds).run)
    companions.start("outage-watch", watch_outages)
    with serve_metrics(settings, url):
        try:
            run_parts(service, parts, stop, backoff(settings))
        finally:
            companions.join()
    if gave_up:
        raise OutageTooLong(gave_up[0])


@contextmanager
def in_background(services: Mapping[str, Part]) -> Iterator[Parts]:
    """Each service on a thread of its own until the block ends, then all stopped together.

    Call `stop()` on what it yields to start stopping early (when a signal arrives, say):
    the deadline runs from then.
    """
    running = Parts()
    try:
        for name, service in services.items():
            running.start(name, service)
        yield running
    finally:
        # A service runs its own parts with the same deadline: a moment more lets it
        # log what it stopped.
        running.join(grace=0.5)
