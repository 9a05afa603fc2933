"""Prometheus metrics read when a scrape asks: the parts' board and connection pools.

Nothing is counted in the parts or pools for this: the collectors read the board
(`casebook.supervision.BOARD`) and each pool's own statistics. `/metrics` on the API and
the metrics port of a standalone process serve `casebook.metrics.REGISTRY` with these
and their database collector (`projections.metrics`).

The API processes of `casebook serve --workers N` answer for all of them together:
prometheus-client's multiprocess mode keeps their counters and histograms in files of
one directory, summed at each scrape, and each process copies its pools' figures into
gauges there every second (`SharedPoolFigures`). What a scrape computes (the database's
figures, the board) is computed once, by the process that answers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
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


# psycopg_pool's statistic: the metric reporting it and its help text.
POOL_FIGURES: dict[str, tuple[str, str]] = {
    "pool_size": ("casebook_db_pool_connections", "Connections a pool holds (busy or idle)."),
    "pool_available": ("casebook_db_pool_idle", "Idle connections of a pool."),
    "requests_waiting": ("casebook_db_pool_waiting", "Requests waiting for a connection."),
    "pool_max": ("casebook_db_pool_max", "The most connections a pool may open."),
}


class PoolsCollector(Collector):
    """Connection pools this process watches, by name: size, idle, waiting, max."""

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

    def readings(self) -> list[tuple[str, dict[str, int]]]:
        """Each watched pool's name and statistics, read now."""
        with self._lock:
            pools = list(self._pools.values())
        return [(pool.name, pool.get_stats()) for pool in pools]

    def collect(self) -> Iterable[Metric]:
        families = {
            key: GaugeMetricFamily(name, text, labels=["pool"])
            for key, (name, text) in POOL_FIGURES.items()
        }
        for name, stats in self.readings():
            for key, family in families.items():
                family.add_metric([name], stats.get(key, 0))
        return list(families.values())


POOLS = PoolsCollector()
PARTS = PartsCollector()


class SharedPoolFigures:
    """This process's pool figures, copied every `every_s` into multiprocess gauges.

    A scrape can read only the answering process's pools; these gauges (`livesum`: summed
    over the API processes alive) let it answer for all of them. Only the API processes
    of `serve --workers N` make one: the gauges belong to no registry and are read back
    from the files by `MultiProcessCollector`.
    """

    def __init__(self, pools: PoolsCollector = POOLS, every_s: float = 1.0) -> None:
        self._pools = pools
        self._every_s = every_s
        self._gauges = {
            key: Gauge(name, text, ["pool"], registry=None, multiprocess_mode="livesum")
            for key, (name, text) in POOL_FIGURES.items()
        }
        self._published: set[str] = set()

    def publish(self) -> None:
        """Copy every watched pool's figures now; a pool no longer watched counts 0."""
        readings = dict(self._pools.readings())
        for name in self._published | readings.keys():
            stats = readings.get(name, {})
            for key, gauge in self._gauges.items():
                gauge.labels(name).set(stats.get(key, 0))
        self._published |= readings.keys()

    def run(self, stop: threading.Event) -> None:
        """Publish now and every `every_s` until `stop` is set."""
        self.publish()
        while not stop.wait(self._every_s):
            self.publish()


class Combined(Collector):
    """This process's registry and further collectors (a database collector) as one."""

    def __init__(self, *collectors: Collector | CollectorRegistry) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def registry_with(*collectors: Collector, shared_dir: Path | None = None) -> CollectorRegistry:
    """A registry serving this process's metrics and `collectors`' (for one app or port).

    With `shared_dir` (the API processes of `serve --workers N`), the counters,
    histograms and pool gauges are those every process wrote there, summed; the board
    and `collectors` are still read by this process alone, once per scrape.
    """
    instruments: list[Collector | CollectorRegistry] = [REGISTRY, POOLS]
    if shared_dir is not None:
        instruments = [SharedInstruments(shared_dir)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Combined(*instruments, PARTS, *collectors))
    return registry


class SharedInstruments(Collector):
    """The counters, histograms and live gauges every process wrote in `shared_dir`, summed.

    A process that stops cleanly drops its live gauges itself (`process_ended`); those of
    a process that was killed are dropped here, before they would be summed.
    """

    def __init__(self, shared_dir: Path) -> None:
        self._dir = shared_dir
        # prometheus-client's multiprocess module has no type hints.
        self._files = MultiProcessCollector(None, path=str(shared_dir))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for pid in _gone(self._dir):
            mark_process_dead(pid, str(self._dir))  # type: ignore[no-untyped-call]
        metrics: Iterable[Metric] = self._files.collect()  # type: ignore[no-untyped-call]
        return metrics


def process_ended(shared_dir: Path) -> None:
    """Drop this process's live gauges from `shared_dir` (its counters stay counted)."""
    mark_process_dead(os.getpid(), str(shared_dir))  # type: ignore[no-untyped-call]


def _gone(shared_dir: Path) -> set[int]:
    """Processes with live gauges in `shared_dir` (files `gauge_live<mode>_<pid>.db`) that
    no longer exist."""
    tails = {file.stem.rpartition("_")[2] for file in shared_dir.glob("gauge_live*_*.db")}
    return {int(tail) for tail in tails if tail.isdigit() and not _exists(int(tail))}


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, the process is only looked up
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        return True
    return True


def watch_pool(pool: Any) -> None:
    """Report a psycopg_pool pool's use on every scrape (`forget_pool` on close)."""
    POOLS.watch(pool)


def forget_pool(pool: Any) -> None:
    POOLS.forget(pool)
