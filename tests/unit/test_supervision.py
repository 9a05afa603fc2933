"""Supervised parts: restarted with growing delays, their troubles on the board."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog.testing

from casebook.supervision import Backoff, Board, PartState, PartStatus, supervised

WAIT_S = 10.0


def wait_for(board: Board, condition: Callable[[PartStatus], bool]) -> PartStatus:
    deadline = time.monotonic() + WAIT_S
    while not (board.snapshot() and condition(status := board.snapshot()[0])):
        assert time.monotonic() < deadline, board.snapshot()
        time.sleep(0.01)
    return status


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(first_s=0.5, max_s=3.0)
    delays = [0.5]
    for _ in range(4):
        delays.append(backoff.after(delays[-1]))
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_failing_part_is_down_on_the_board_with_its_cause_then_running_again() -> None:
    board = Board()
    stop = threading.Event()
    failed_once, may_recover, recovered = threading.Event(), threading.Event(), threading.Event()

    def part(stop: threading.Event) -> None:
        if not failed_once.is_set():
            failed_once.set()
            raise ConnectionError("server closed the connection unexpectedly")
        may_recover.wait(WAIT_S)
        board.report_lag(0)
        recovered.set()
        stop.wait()

    backoff = Backoff(first_s=1.0, max_s=1.0)  # time to see it down
    thread = threading.Thread(
        target=supervised("relay", part, backoff, board), args=(stop,), daemon=True
    )
    thread.start()
    assert failed_once.wait(WAIT_S)
    down = wait_for(board, lambda status: status.failures == 1)
    assert down.state is PartState.DOWN
    assert down.last_error == "ConnectionError: server closed the connection unexpectedly"
    assert down.failing_since is not None
    may_recover.set()

    assert recovered.wait(WAIT_S)
    (running,) = board.snapshot()
    assert (running.state, running.restarts, running.failures) == (PartState.RUNNING, 1, 1)
    assert running.failing_since is None  # it reported a round: the outage is over
    stop.set()
    thread.join(WAIT_S)
    assert board.snapshot()[0].state is PartState.STOPPED


def test_each_failure_is_logged_once_and_a_repeated_cause_without_its_traceback() -> None:
    board = Board()
    stop = threading.Event()
    calls: list[int] = []

    def part(stop: threading.Event) -> None:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
            return
        raise OSError("connection refused")

    with structlog.testing.capture_logs() as logs:
        supervised("sla-timer", part, Backoff(first_s=0.01, max_s=0.01), board)(stop)

    failures = [entry for entry in logs if entry["event"] == "part.failed"]
    assert [entry["failures"] for entry in failures] == [1, 2]
    assert failures[0]["exc_info"] is not None
    assert failures[1]["exc_info"] is None
    assert all(entry["cause"] == "OSError: connection refused" for entry in failures)


def test_a_part_that_returns_unasked_counts_as_a_failure() -> None:
    board = Board()
    stop = threading.Event()
    runs: list[int] = []

    def part(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) == 2:
            stop.set()

    supervised("checkpointer", part, Backoff(first_s=0.01, max_s=0.01), board)(stop)

    (status,) = board.snapshot()
    assert status.failures == 1
    assert status.last_error is not None and "returned without being told" in status.last_error


def status(**changes: object) -> PartStatus:
    base = PartStatus("audit-consumer", PartState.RUNNING, datetime(2026, 1, 1, tzinfo=UTC))
    return PartStatus(**{**base.__dict__, **changes})  # type: ignore[arg-type]


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_a_part_failing_longer_than_the_limit_is_trouble_and_shorter_is_not() -> None:
    failing = status(failing_since=NOW - timedelta(seconds=61), last_error="OperationalError: x")
    assert failing.trouble(NOW, 60) == "failing for 61 s: OperationalError: x"
    assert status(failing_since=NOW - timedelta(seconds=59)).trouble(NOW, 60) is None


def test_a_part_behind_without_progress_is_trouble_and_one_catching_up_is_not() -> None:
    stuck = status(lag=40, progressed_at=NOW - timedelta(seconds=90))
    assert stuck.trouble(NOW, 60) == "40 behind without progress for 90 s"
    assert status(lag=40, progressed_at=NOW - timedelta(seconds=5)).trouble(NOW, 60) is None
    assert status(lag=0, progressed_at=NOW - timedelta(seconds=900)).trouble(NOW, 60) is None


def test_lag_reports_move_progress_only_when_caught_up_or_moving() -> None:
    board = Board()
    stop = threading.Event()
    stop.set()
    seen: list[PartStatus] = []

    def part(_: threading.Event) -> None:
        board.report_lag(10, progressed=True)
        first = board.snapshot()[0]
        board.report_lag(10)
        seen.extend([first, board.snapshot()[0]])

    # Run the part once, on this thread, as its supervisor would.
    board._enter("audit-consumer")
    board._move("audit-consumer", PartState.RUNNING)
    part(stop)
    first, second = seen
    assert second.progressed_at == first.progressed_at
    assert second.lag == 10


def test_a_part_standing_by_is_healthy_and_running_again_when_it_leads() -> None:
    board = Board()
    board._enter("sla-outbox")
    board._move("sla-outbox", PartState.RUNNING, failing_since=NOW)

    board.report_standby()
    (standby,) = board.snapshot()
    assert (standby.state, standby.failing_since) == (PartState.STANDBY, None)
    assert board.troubles(0) == {}

    board.report_lag(3, progressed=True)
    assert board.snapshot()[0].state is PartState.RUNNING
