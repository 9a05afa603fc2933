"""Long-running parts restarted after any failure, and a board that says how each one is.

Every part (a relay, a consumer, a timer, an outbox publisher, the checkpointer) runs
under `supervised`: when it raises, the failure is logged once with its cause and the
part is started again after a delay that doubles up to a cap, until the stop event is
set. A database or broker restart therefore costs a few retries, never a dead thread in
a process that still answers 200.

The board holds each part's state for the status route, `casebook consumers status`
and `/healthz`. Parts tell it how far behind they are through `report_lag`, from the
thread they run on; a part that is down, or behind without moving, for longer than the
unhealthy limit makes its process unhealthy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

import structlog

from casebook.errors import first_line

log = structlog.get_logger("casebook.supervision")
FIRST_RETRY_S = 0.5
# A part that ran this long before failing starts its backoff from the beginning again.
HEALTHY_RUN_S = 60.0

Part = Callable[[threading.Event], object]  # what it returns is ignored


class PartState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STANDBY = "standby"  # healthy, waiting while another process's part leads
    DOWN = "down"  # failed; waiting to be started again
    STOPPED = "stopped"


@dataclass(frozen=True)
class PartStatus:
    """What the board knows of one part; times are wall-clock UTC."""

    name: str
    state: PartState
    since: datetime  # when it entered `state`
    restarts: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    retry_at: datetime | None = None
    lag: int | None = None
    # Last moment the part was caught up or moved forward (None: it never said).
    progressed_at: datetime | None = None
    # First failure since the part last did useful work: restarts that fail again at
    # once (the database still down) are one outage, not many short ones.
    failing_since: datetime | None = None

    def failing_for(self, now: datetime) -> float:
        """Seconds since the outage began (0 when the part is not failing)."""
        return 0.0 if self.failing_since is None else (now - self.failing_since).total_seconds()

    def trouble(self, now: datetime, limit_s: float) -> str | None:
        """Why this part makes its process unhealthy, or None when it does not."""
        if (failing := self.failing_for(now)) > limit_s:
            return f"failing for {failing:.0f} s: {self.last_error}"
        if self.state is PartState.RUNNING and self.lag and self.progressed_at is not None:
            stalled = (now - self.progressed_at).total_seconds()
            if stalled > limit_s:
                return f"{self.lag} behind without progress for {stalled:.0f} s"
        return None


def _now() -> datetime:
    return datetime.now(UTC)


class Board:
    """Every supervised part of this process, by name (safe to use from any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: dict[str, PartStatus] = {}
        self._local = threading.local()

    def snapshot(self) -> list[PartStatus]:
        with self._lock:
            return sorted(self._parts.values(), key=lambda status: status.name)

    def troubles(self, limit_s: float) -> dict[str, str]:
        """Each unhealthy part's name and why."""
        now = _now()
        found = {status.name: status.trouble(now, limit_s) for status in self.snapshot()}
        return {name: why for name, why in found.items() if why is not None}

    def report_lag(self, lag: int | None, *, progressed: bool = False) -> None:
        """The calling thread's part is `lag` behind (0: caught up); `progressed`: it moved."""
        name = getattr(self._local, "part", None)
        if name is None:
            return  # not run by a supervisor (a test, a bench): nobody to tell
        now = _now()
        with self._lock:
            status = self._parts[name]
            moved = progressed or not lag or status.progressed_at is None
            leading = status.state is PartState.STANDBY
            self._parts[name] = replace(
                status,
                state=PartState.RUNNING if leading else status.state,
                since=now if leading else status.since,
                lag=lag,
                progressed_at=now if moved else status.progressed_at,
                failing_since=None,  # it got through a round: the outage is over
            )

    def report_standby(self) -> None:
        """The calling thread's part is healthy and waits while another one leads."""
        name = getattr(self._local, "part", None)
        if name is None:
            return
        now = _now()
        with self._lock:
            status = self._parts[name]
            self._parts[name] = replace(
                status,
                state=PartState.STANDBY,
                since=status.since if status.state is PartState.STANDBY else now,
                lag=None,
                progressed_at=now,
                failing_since=None,
            )

    def report_trouble(self, error: BaseException) -> None:
        """The calling thread's part failed and retries by itself (it logged why)."""
        name = getattr(self._local, "part", None)
        if name is None:
            return
        now = _now()
        with self._lock:
            status = self._parts[name]
            self._parts[name] = replace(
                status,
                failures=status.failures + 1,
                last_error=f"{type(error).__name__}: {first_line(error)}",
                last_error_at=now,
                failing_since=status.failing_since or now,
            )

    def forget(self, name: str) -> None:
        with self._lock:
            self._parts.pop(name, None)

    def _enter(self, name: str) -> None:
        self._local.part = name
        with self._lock:
            self._parts[name] = PartStatus(name, PartState.STARTING, _now())

    def _move(self, name: str, state: PartState, **changes: object) -> PartStatus:
        with self._lock:
            status = self._parts[name]
            if state is not status.state:
                changes["since"] = _now()
            status = self._parts[name] = replace(status, state=state, **changes)  # type: ignore[arg-type]
            return status


# One per process: what the API's status route and /healthz read.
BOARD = Board()


def report_lag(lag: int | None, *, progressed: bool = False) -> None:
    """Tell this process's board how far behind the calling part is."""
    BOARD.report_lag(lag, progressed=progressed)


def report_standby() -> None:
    """Tell this process's board that the calling part stands by (another one leads)."""
    BOARD.report_standby()


def report_trouble(error: BaseException) -> None:
    """Tell this process's board that the calling part failed and is retrying itself."""
    BOARD.report_trouble(error)


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts: doubling from `first_s`, never above `max_s`."""

    first_s: float = FIRST_RETRY_S
    max_s: float = 30.0

    def after(self, delay: float) -> float:
        return min(delay * 2, self.max_s)


def supervised(name: str, target: Part, backoff: Backoff, board: Board = BOARD) -> Part:
    """`target` as a part that is started again after any failure until told to stop."""

    def run(stop: threading.Event) -> None:
        board._enter(name)
        delay = backoff.first_s
        restarts = 0
        try:
            while not stop.is_set():
                started = time.monotonic()
                board._move(name, PartState.RUNNING, restarts=restarts, retry_at=None)
                try:
                    target(stop)
                    if stop.is_set():
                        return
                    raise PartEnded(f"{name} returned without being told to stop")
                except Exception as error:
                    if stop.is_set():
                        # Failing while stopping is the stop's business, not a fault.
                        log.info("part.stopped.with_error", part=name, error=first_line(error))
                        return
                    if time.monotonic() - started > HEALTHY_RUN_S:
                        delay = backoff.first_s
                    _fail(board, name, error, delay)
                stop.wait(delay)
                delay = backoff.after(delay)
                restarts += 1
                log.info("part.restarting", part=name, restarts=restarts)
        finally:
            board._move(name, PartState.STOPPED, retry_at=None)

    return run


def _fail(board: Board, name: str, error: Exception, delay: float) -> None:
    now = _now()
    before = {status.name: status for status in board.snapshot()}[name]
    cause = f"{type(error).__name__}: {first_line(error)}"
    status = board._move(
        name,
        PartState.DOWN,
        failures=before.failures + 1,
        failing_since=before.failing_since or now,
        last_error=cause,
        last_error_at=now,
        retry_at=datetime.fromtimestamp(now.timestamp() + delay, UTC),
    )
    # One line per failure; the traceback only when this failure differs from the last,
    # so an outage of many retries does not bury the log.
    repeated = before.last_error == cause
    log.error(
        "part.failed",
        part=name,
        cause=cause,
        failures=status.failures,
        retry_in_s=delay,
        exc_info=None if repeated else error,
    )


class PartEnded(RuntimeError):
    """A part's run returned although nobody asked it to stop."""
