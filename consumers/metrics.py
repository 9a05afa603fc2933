"""What a running consumer reports: lag, throughput and parked subjects."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kafka import TopicPartition

from consumers.batch import BatchResult
from consumers.state import MemberStatus, Partition

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

    def advanced(
        self,
        consumer: Any,
        positions: dict[Partition, int],
        rate: Rate,
        result: BatchResult | None = None,
    ) -> Metrics:
        """A new snapshot: lag from `consumer`'s highwater marks, counts plus `result`'s."""
        assigned = sorted((tp.topic, tp.partition) for tp in consumer.assignment())
        lag: dict[Partition, int] = {}
        for topic, partition in assigned:
            highwater = consumer.highwater(TopicPartition(topic, partition))
            if highwater is not None:  # unknown until a fetch for the partition came back
                # Nothing consumed yet: all of it is lag.
                lag[(topic, partition)] = max(highwater - positions.get((topic, partition), 0), 0)
        if result is None:
            return replace(
                self, assigned=tuple(assigned), lag=lag, events_per_second=rate.per_second()
            )
        return replace(
            self,
            assigned=tuple(assigned),
            lag=lag,
            events_per_second=rate.per_second(),
            consumed=self.consumed + result.records,
            applied=self.applied + result.applied,
            duplicates=self.duplicates + result.duplicates,
            held=self.held + result.held,
            dead_lettered=self.dead_lettered + len(result.dead_letters),
            batches=self.batches + 1,
        )

    def status(self, started_at: datetime) -> MemberStatus:
        """This snapshot as the member's status row."""
        return MemberStatus(
            group=self.group,
            member=self.member,
            partitions=self.partitions(),
            lag=self.total_lag,
            events_per_second=self.events_per_second,
            parked=self.parked,
            applied=self.applied,
            dead_lettered=self.dead_lettered,
            started_at=started_at,
            updated_at=datetime.now(UTC),
        )


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
