"""Broker loss on a three-broker Apache Kafka cluster, with the whole pipeline running.

Sixteen writers keep working cases through the write side while the relay, the SLA
tracker and the audit trail run on threads. The leader of a partition of the case-events
topic is killed (-9) mid-run and started again later; then a second broker is stopped
cleanly and started. Topics are replicated three times with two in sync and producers use
acks=all with idempotence, so nothing acknowledged may be lost or duplicated: every stored
event is on the topic once, each case's sequence is contiguous, the projections equal a
rebuild from the store, the audit log verifies intact, and every acknowledged command is
stored. How long the relay and the consumers stalled for each fault is printed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from casebook.database import Database
from entrypoints.apache_kafka import ApacheKafkaCluster, apache_kafka
from entrypoints.rebuilds import compare
from relay.cloudevents import topic_name
from tests.integration.relay_support import stored_ids
from tests.integration.system_support import (
    System,
    Writer,
    assert_log_intact_and_nothing_dead,
    count,
    rebuild,
    running_system,
    wait_until_caught_up,
)
from tests.integration.topic_support import read_topic
from tests.integration.workload_support import query, store_versions
from tests.integration.write_side import register_organisation

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.apache_kafka]

WRITERS = 16
WRITER_PAUSE_S = 0.1  # per writer, between cases: steady load the 2-core machine can follow
# Correctness, not speed: a busy machine may take minutes to drain what the faults held up.
CAUGHT_UP_S = 300


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApacheKafkaCluster]:
    """Three Apache Kafka brokers (three KRaft voters) for this test alone."""
    monkeypatch.setenv("CASEBOOK_KAFKA_BROKER_KIND", "apache")
    with apache_kafka(3) as running:
        yield running


@dataclass
class Sample:
    at: float
    relayed: int
    sla_applied: int
    audited: int


@dataclass
class Progress:
    """Samples the relay's position and the consumers' progress every 100 ms."""

    database: Database
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            row = query(
                self.database,
                "SELECT (SELECT coalesce(max(position), 0) FROM casebook_relay_positions),"
                " (SELECT coalesce(sum(next_offset), 0) FROM casebook_consumer_offsets"
                "  WHERE consumer_group = 'sla'),"
                " (SELECT count(*) FROM casebook_audit_entries)",
            )[0]
            self.samples.append(Sample(time.monotonic(), *map(int, row)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def longest_stall(self, metric: str, start: float, end: float) -> float:
        """The longest time in [start, end] during which `metric` did not move."""
        window = [s for s in self.samples if start <= s.at <= end]
        longest, since = 0.0, start
        previous = window[0] if window else None
        for sample in window[1:]:
            if previous is not None and getattr(sample, metric) != getattr(previous, metric):
                longest = max(longest, sample.at - since)
                since = sample.at
            previous = sample
        return max(longest, (window[-1].at - since) if window else 0.0)


def assert_topic_complete_and_gap_free(system: System) -> None:
    """The topic contract's gap check: every stored event once, each key contiguous."""
    records = read_topic(system.settings, topic_name(system.settings.topic_prefix))
    positions = Counter(int(r["ce_position"]) for r in records)
    repeated = {position: n for position, n in positions.items() if n > 1}
    assert not repeated, f"positions published more than once: {sorted(repeated)[:10]}"
    last = count(system.database, "SELECT max(notification_id) FROM casebook_events")
    assert sorted(positions) == list(range(1, last + 1)), "a position is missing"
    assert {r["ce_id"] for r in records} == stored_ids(system.database)
    sequences: dict[str, list[int]] = defaultdict(list)
    for record in records:
        sequences[record["ce_subject"]].append(int(record["ce_sequence"]))
    gaps = {key: seq for key, seq in sequences.items() if seq != list(range(1, len(seq) + 1))}
    assert not gaps, f"keys whose sequence is not contiguous in topic order: {list(gaps)[:5]}"


def test_killing_and_stopping_brokers_loses_and_duplicates_nothing(
    clean_database: Database, cluster: ApacheKafkaCluster
) -> None:
    stalls: dict[str, dict[str, float]] = {}
    with running_system(clean_database, cluster) as system:
        organisation_id = register_organisation(system.casebook)
        progress = Progress(clean_database)
        writers = [
            Writer(system.casebook, organisation_id, pause_s=WRITER_PAUSE_S) for _ in range(WRITERS)
        ]
        try:
            writers[0].wait_for_more(10)
            topic = topic_name(system.settings.topic_prefix)
            leader = cluster.leader_of(topic, 0)

            killed_at = time.monotonic()
            cluster.kill_node(leader)
            writers[0].wait_for_more(20)
            cluster.start_node(leader)
            back_at = time.monotonic()
            writers[0].wait_for_more(10)

            second = next(node for node in cluster.node_ids if node != leader)
            stopped_at = time.monotonic()
            cluster.stop_node(second)
            writers[0].wait_for_more(20)
            cluster.start_node(second)
            writers[0].wait_for_more(10)
            ended_at = time.monotonic()
        finally:
            opened = [case for writer in writers for case in writer.stop()]
        wait_until_caught_up(system, organisation_id, CAUGHT_UP_S)
        progress.stop()

        for fault, start, end in (
            (f"kill -9 of broker {leader} (leader of partition 0)", killed_at, back_at),
            (f"clean stop of broker {second}", stopped_at, ended_at),
        ):
            stalls[fault] = {
                metric: round(progress.longest_stall(metric, start, end), 2)
                for metric in ("relayed", "sla_applied", "audited")
            }

        # Every acknowledged command is stored, and nothing stored is missing downstream.
        stored = store_versions(clean_database, organisation_id)
        assert {str(case) for case in opened} <= set(stored)
        assert_topic_complete_and_gap_free(system)
        for name in ("sla", "audit"):
            outcome = rebuild(system, name, "store")
            assert compare(clean_database, name, outcome.archive) == [], name
        assert_log_intact_and_nothing_dead(clean_database)

    print(f"\nbroker loss: {len(opened)} cases opened by {WRITERS} writers")
    for fault, by_metric in stalls.items():
        print(f"  {fault}: longest stall (s) {by_metric}")
