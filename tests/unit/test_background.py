"""Background parts stop together: every part is told first, then all are awaited."""

from __future__ import annotations

import threading

import pytest

from casebook.supervision import Backoff
from entrypoints import background
from entrypoints.background import Parts, run_parts

WAIT_S = 10.0


def test_every_part_is_told_to_stop_before_any_is_awaited() -> None:
    # Each part finishes only once all of them were told: stopping one after another
    # (tell, join, tell the next) would leave the first waiting for the second.
    parts = Parts()
    told = threading.Barrier(3, timeout=WAIT_S)
    finished: list[str] = []

    def part(name: str) -> background.Part:
        def run(stop: threading.Event) -> None:
            stop.wait()
            told.wait()
            finished.append(name)

        return run

    for name in ("relay", "sla", "audit"):
        parts.start(name, part(name))

    assert parts.join() == []
    assert sorted(finished) == ["audit", "relay", "sla"]


def test_a_part_that_does_not_stop_is_named_and_left_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(background, "STOP_SECONDS", 0.2)
    release = threading.Event()
    parts = Parts()
    parts.start("prompt", lambda stop: stop.wait())
    parts.start("stubborn", lambda stop: release.wait(WAIT_S))

    try:
        assert parts.join() == ["stubborn"]
    finally:
        release.set()


def test_a_failing_part_is_started_again_while_the_others_go_on() -> None:
    stop = threading.Event()
    attempts: list[int] = []
    healthy_stopped = threading.Event()

    def fails_twice(stop: threading.Event) -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) <= 2:
            raise RuntimeError("database restarting")
        stop.set()  # the third start works: end the test from inside
        stop.wait()

    def waits(stop: threading.Event) -> None:
        stop.wait()
        healthy_stopped.set()

    parts = {"flaky": fails_twice, "healthy": waits}
    run_parts("sla", parts, stop, Backoff(first_s=0.01, max_s=0.02))

    assert attempts == [1, 2, 3]
    assert healthy_stopped.is_set()
