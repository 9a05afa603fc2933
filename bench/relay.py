"""Relay throughput and latency against a raw Kafka producer, on one broker.

All runs share one fresh PostgreSQL database holding N stored events and one broker
(embedded tansu, or with --kafka apache a one-broker Apache Kafka):
(1) raw: a kafka-python `KafkaProducer` configured like the relay's (acks=all,
    idempotent, same linger) sends the very records the relay would send (built with
    `relay.cloudevents.record_for` from the stored events beforehand) to a fresh topic,
    then flushes; measured from the first send to the end of the flush;
(2) relay: a `Relay` publishes the same N events from position 0 to its own topic,
    measured from `run()` to its durable position reaching the last notification id
    (startup, reading and mapping the store, acknowledgements and position saves);
    (1) and (2) alternate for --rounds rounds (fresh topics, a fresh relay name each),
    medians and per-round ratios reported, so a slow spell hits both sides alike;
(3) latency: with the relay caught up and idle, single commands one at a time, each
    timed from `Casebook.execute()` returning to a consumer at the topic's end receiving
    the record with its `ce_id`.
Reported as records/s, the ratio (2)/(1), and p50/p99 of (3).

Run: python -m bench.relay [--database-url URL] [--kafka tansu|apache] [--events N]
     [--rounds R] [--smoke]
(default: an embedded PostgreSQL in a temporary directory; --smoke: every part, tiny)
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from bench.infra import (
    BenchBroker,
    add_arguments,
    bench_broker,
    bench_database,
    consumer_at_end,
    describe_database,
    fresh_database,
    parse_args,
)
from bench.stats import percentile
from bench.write import AGENT, seed
from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.cases import NoteVisibility
from entrypoints.logging import configure_logging
from relay.cloudevents import Record, record_for
from relay.relay import Relay

WRITERS = 16
# --smoke: stored events, both rounds' sides and the latency part, a few seconds each.
SMOKE = {"events": 60, "cases": 8, "rounds": 1, "latency_commands": 10}
# How long a relay may take to publish what is stored before the bench calls it stuck.
CATCH_UP_S = 300.0


def store_events(casebook: Casebook, cases: int, events: int) -> list[uuid.UUID]:
    """An organisation, `cases` cases and notes up to `events` stored events.

    Each writer keeps to cases of its own, so concurrent notes never conflict; with fewer
    cases than WRITERS there are as many writers as cases, still sharing all the notes.
    """
    opened = seed(casebook, cases)
    notes = max(0, events - 1 - cases)
    writers = min(WRITERS, len(opened))

    def write(worker: int) -> None:
        mine = opened[worker::writers]
        for i in range(worker, notes, writers):
            case_id = mine[(i // writers) % len(mine)]
            casebook.execute(
                c.AddNote(case_id, f"note {i}", NoteVisibility.INTERNAL), c.CommandContext(AGENT)
            )

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    return opened


def stored_records(casebook: Casebook, settings: Settings) -> list[Record]:
    """The records the relay would send for every stored event, in log order."""
    recorder, mapper = casebook.store.recorder, casebook.store.mapper
    records: list[Record] = []
    position = 0
    while True:
        page = recorder.select_notifications(start=position, limit=1000, inclusive_of_start=False)
        if not page:
            return records
        for notification in page:
            records.append(
                record_for(
                    mapper.to_domain_event(notification),
                    notification.id,
                    source=settings.event_source,
                    include_personal=settings.relay_include_personal_data,
                )
            )
        position = page[-1].id


def relay_like_producer(bootstrap: str) -> KafkaProducer:
    """A producer configured as `Relay._default_producer` is."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-raw",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        retries=5,
        retry_backoff_ms=200,
        request_timeout_ms=10_000,
    )


def bench_raw(bootstrap: str, records: list[Record], partitions: int) -> float:
    """(1): send prepared records to a fresh topic and flush; records/s."""
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        admin.create_topics(
            {topic: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
    producer = relay_like_producer(bootstrap)
    try:
        producer.partitions_for(topic)  # metadata before the clock starts
        began = time.perf_counter()
        futures = [
            producer.send(topic, key=r.key, value=r.value, headers=r.headers) for r in records
        ]
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=60)
        return len(records) / (time.perf_counter() - began)
    finally:
        producer.close(timeout=5)


class Position:
    """The relay's durable position, read over one open connection."""

    def __init__(self, database: Database, relay: str) -> None:
        self._conn = psycopg.connect(database.url, autocommit=True)
        self._relay = relay

    def __call__(self) -> int:
        row = self._conn.execute(
            "SELECT position FROM casebook_relay_positions WHERE relay = %s", (self._relay,)
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._conn.close()


class RunningRelay:
    """The relay on a thread of its own until `close()`."""

    def __init__(self, relay: Relay) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=relay.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def wait_for_position(running: RunningRelay, position: Position, last: int) -> None:
    """Until the relay's durable position reaches `last`; raise if it died or stalled.

    Without the checks a relay thread that failed would leave the bench polling forever,
    and a smoke run in CI would hang instead of failing.
    """
    deadline = time.monotonic() + CATCH_UP_S
    while position() < last:
        if not running.thread.is_alive():
            raise RuntimeError(f"the relay stopped at position {position()} of {last}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the relay reached only {position()} of {last} in {CATCH_UP_S} s")
        time.sleep(0.005)


def bench_relay(relay: Relay, position: Position, last: int) -> tuple[float, RunningRelay]:
    """(2): start the relay and wait for its position to reach `last`; events/s."""
    began = time.perf_counter()
    running = RunningRelay(relay)
    try:
        wait_for_position(running, position, last)
    except BaseException:
        running.close()
        raise
    return last / (time.perf_counter() - began), running


def bench_latency(
    casebook: Casebook, cases: list[uuid.UUID], consumer: KafkaConsumer, commands: int
) -> list[float]:
    """(3): execute() returning to the consumer holding the record, in ms, per command."""
    samples = []
    for i in range(commands):
        case_id = cases[i % len(cases)]
        result = casebook.execute(
            c.AddNote(case_id, f"latency {i}", NoteVisibility.INTERNAL), c.CommandContext(AGENT)
        )
        stored = time.perf_counter()
        wanted = f"{result.aggregate_id}:{result.version}".encode()
        deadline = stored + 30
        while not any(
            value == wanted
            for batch in consumer.poll(timeout_ms=50).values()
            for record in batch
            for name, value in record.headers
            if name == "ce_id"
        ):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{wanted.decode()} did not arrive within 30 s")
        samples.append((time.perf_counter() - stored) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, kafka=True)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-commands", type=int, default=200)
    args = parse_args(parser, SMOKE)

    configure_logging(Settings(log_level="warning"), stream="stderr")
    results: dict[str, Any] = {"raw": [], "relay": []}
    with bench_database(args.database_url) as server, fresh_database(server) as database:
        results["database"] = describe_database(server)
        settings = Settings(database_url=database.url, log_level="warning")
        casebook = Casebook.connect(database, settings)
        try:
            cases = store_events(casebook, args.cases, args.events)
            records = stored_records(casebook, settings)
            results["events"] = len(records)
            with bench_broker(args.kafka) as broker:
                results["broker"] = broker.description
                results["latency"] = rounds(
                    args, results, casebook, database, cases, records, broker
                )
        finally:
            casebook.close()
    report(args, results, settings.topic_partitions)


def rounds(
    args: argparse.Namespace,
    results: dict[str, Any],
    casebook: Casebook,
    database: Database,
    cases: list[uuid.UUID],
    records: list[Record],
    broker: BenchBroker,
) -> list[float]:
    """Alternate raw and relay rounds (a fresh topic and relay name each), then (3)."""
    bootstrap = broker.bootstrap_servers
    running: RunningRelay | None = None
    for round_ in range(args.rounds):
        if running is not None:
            running.close()  # the relay of the round before: idle, caught up
        settings = Settings(
            database_url=database.url,
            log_level="warning",
            topic_prefix=f"bench{uuid.uuid4().hex[:6]}",
        )
        results["raw"].append(bench_raw(bootstrap, records, settings.topic_partitions))
        relay = Relay(
            casebook.store, database, settings, bootstrap_servers=bootstrap, name=f"bench-{round_}"
        )
        position = Position(database, relay.name)
        try:
            rate, running = bench_relay(relay, position, records[-1].position)
        finally:
            position.close()
        results["relay"].append(rate)
    assert running is not None
    try:
        consumer = consumer_at_end(broker, relay.topic)
        try:
            return bench_latency(casebook, cases, consumer, args.latency_commands)
        finally:
            consumer.close()
    finally:
        running.close()


def report(args: argparse.Namespace, results: dict[str, Any], partitions: int) -> None:
    """Records/s, the relay/raw ratio (median and per round) and the latency percentiles."""
    raw, relay = statistics.median(results["raw"]), statistics.median(results["relay"])
    ratios = [r / b for r, b in zip(results["relay"], results["raw"], strict=True)]
    latency = results["latency"]
    smoke = "; SMOKE RUN: tiny sizes, figures mean nothing" if args.smoke else ""
    print(
        f"broker: {results['broker']}, {partitions} partitions; database: {results['database']}, "
        f"{results['events']} events over {args.cases} cases, {args.rounds} rounds{smoke}\n"
    )
    print(f"(1) raw KafkaProducer, same records  {raw:8.0f} records/s   1.00")
    print(
        f"(2) relay from position 0            {relay:8.0f} events/s    "
        f"{relay / raw:.2f}  (target >= 0.6)"
    )
    print("    2/1 per round: " + ", ".join(f"{r:.2f}" for r in ratios))
    print(
        f"(3) commit-to-consumer latency, idle relay, {len(latency)} commands: "
        f"p50 {percentile(latency, 0.5):.1f} ms, p99 {percentile(latency, 0.99):.1f} ms, "
        f"max {max(latency):.1f} ms"
    )


if __name__ == "__main__":
    main()
