"""What a running consumer reports: lag, throughput and parked subjects."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from consumers.state import Partition

RATE_WINDOW_S = 10.0


@dataclass(frozen=True)
class Metrics:
    """A snapshot of one runtime; `lag` is highwater minus position per assigned partition."""

    group: str
    member: str
    assigned: tuple[Partition, ...] = ()
    lag: dict[Partition, int] = field(default_factory=dict)
    events_per_second: float = 0.0
    parked: int = 0
    consumed: int = 0  # records polled and handled
    applied: int = 0
    duplicates: int = 0
    held: int = 0
    dead_lettered: int = 0
    batches: int = 0

    @property
    def total_lag(self) -> int | None:
        """Records behind over every assigned partition (None before anything is known)."""
        return sum(self.lag.values()) if self.lag else None

    def partitions(self) -> str:
        """Assigned partitions as `topic:p,...`, for the status row."""
        return ",".join(f"{topic}:{partition}" for topic, partition in self.assigned)


class Rate:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = RATE_WINDOW_S) -> None:
        self._window = window
        self._started = time.monotonic()
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, count: int) -> None:
        """Record `count` events handled now."""
        self._samples.append((time.monotonic(), count))

    def per_second(self) -> float:
        """Events per second over the window (or since start when that is shorter)."""
        now = time.monotonic()
        while self._samples and self._samples[0][0] < now - self._window:
            self._samples.popleft()
        span = min(self._window, max(now - self._started, 1e-3))
        return sum(count for _, count in self._samples) / span
