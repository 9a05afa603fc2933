"""Prometheus metrics read when a scrape asks: the parts' board and connection pools.

Nothing is counted in the parts or pools for this: the collectors read the board
(`casebook.supervision.BOARD`) and each pool's own statistics. `/metrics` on the API and
the metrics port of a standalone process serve `casebook.metrics.REGISTRY` with these
and their database collector (`projections.metrics`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from casebook.metrics import REGISTRY
from casebook.supervision import BOARD, Board, PartState


class PartsCollector(Collector):
    """The board of supervised parts, read at scrape time."""

    def __init__(self, board: Board = BOARD) -> None:
        self._board = board

    def collect(self) -> Iterable[Metric]:
        lag = GaugeMetricFamily(
            "casebook_part_lag",
            "How far behind a part says it is (records for a consumer, unacknowledged "
            "notifications for the relay); absent while it has not said.",
            labels=["part"],
        )
        restarts = CounterMetricFamily(
            "casebook_part_restarts", "Times the supervisor started a part again.", labels=["part"]
        )
        failures = CounterMetricFamily(
            "casebook_part_failures", "Failures a part had or reported.", labels=["part"]
        )
        state = GaugeMetricFamily(
            "casebook_part_state", "1 for the state a part is in, 0 for the others.",
            labels=["part", "state"],
        )  # fmt: skip
        for status in self._board.snapshot():
            if status.lag is not None:
                lag.add_metric([status.name], status.lag)
            restarts.add_metric([status.name], status.restarts)
            failures.add_metric([status.name], status.failures)
            for each in PartState:
                state.add_metric([status.name, each.value], float(each is status.state))
        return [lag, restarts, failures, state]


class Pool(Protocol):
    """What the pool collector reads of a psycopg_pool pool."""

    @property
    def name(self) -> str: ...

    def get_stats(self) -> dict[str, int]: ...


class PoolsCollector(Collector):
    """Connection pools this process watches, by name: size, idle, waiting, max."""

    _FIGURES: ClassVar[dict[str, tuple[str, str]]] = {
        "pool_size": ("casebook_db_pool_connections", "Connections a pool holds (busy or idle)."),
        "pool_available": ("casebook_db_pool_idle", "Idle connections of a pool."),
        "requests_waiting": ("casebook_db_pool_waiting", "Requests waiting for a connection."),
        "pool_max": ("casebook_db_pool_max", "The most connections a pool may open."),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[int, Pool] = {}

    def watch(self, pool: Pool) -> None:
        """Report `pool` from now on (until `forget`)."""
        with self._lock:
            self._pools[id(pool)] = pool

    def forget(self, pool: Pool) -> None:
        with self._lock:
            self._pools.pop(id(pool), None)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            pools = list(self._pools.values())
        families = {
            key: GaugeMetricFamily(name, text, labels=["pool"])
            for key, (name, text) in self._FIGURES.items()
        }
        for pool in pools:
            stats = pool.get_stats()
            for key, family in families.items():
                family.add_metric([pool.name], stats.get(key, 0))
        return list(families.values())


POOLS = PoolsCollector()
REGISTRY.register(PartsCollector())
REGISTRY.register(POOLS)


class Combined(Collector):
    """This process's registry and further collectors (a database collector) as one."""

    def __init__(self, *collectors: Collector | CollectorRegistry) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def registry_with(*collectors: Collector) -> CollectorRegistry:
    """A registry serving REGISTRY's metrics and `collectors`' (for one app or port)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Combined(REGISTRY, *collectors))
    return registry


def watch_pool(pool: Any) -> None:
    """Report a psycopg_pool pool's use on every scrape (`forget_pool` on close)."""
    POOLS.watch(pool)


def forget_pool(pool: Any) -> None:
    POOLS.forget(pool)
