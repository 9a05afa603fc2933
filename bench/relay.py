"""Relay throughput and latency against a raw Kafka producer, on one tansu broker.

All runs share one fresh PostgreSQL database holding N stored events and one embedded
tansu broker:
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

Run: python -m bench.relay [--database-url URL] [--events N] [--rounds R]
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
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from bench.write import AGENT, drop, percentile, seed
from casebook import commands as c
from casebook.application import Casebook
from casebook.broker import embedded_broker
from casebook.database import Database, ensure_database, parse_database_url
from casebook.logging import configure_logging
from casebook.migrate import apply_migrations
from casebook.settings import Settings
from relay.cloudevents import Record, record_for
from relay.relay import Relay

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
WRITERS = 16


def store_events(casebook: Casebook, cases: int, events: int) -> list[uuid.UUID]:
    """An organisation, `cases` cases and notes up to `events` stored events."""
    opened = seed(casebook, cases)
    notes = max(0, events - 1 - cases)

    def write(worker: int) -> None:
        mine = opened[worker::WRITERS]
        for i in range(worker, notes, WRITERS):
            case_id = mine[(i // WRITERS) % len(mine)]
            casebook.execute(c.AddNote(case_id, f"note {i}", "internal"), c.CommandContext(AGENT))

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(min(WRITERS, len(opened)))))
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


def bench_relay(relay: Relay, position: Position, last: int) -> tuple[float, RunningRelay]:
    """(2): start the relay and wait for its position to reach `last`; events/s."""
    began = time.perf_counter()
    running = RunningRelay(relay)
    while position() < last:
        time.sleep(0.005)
    return last / (time.perf_counter() - began), running


def at_the_end(bootstrap: str, topic: str) -> KafkaConsumer:
    """A consumer that has read everything in `topic` (tansu's end offsets are wrong)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=5,  # the broker holds an empty fetch this long at most
        max_partition_fetch_bytes=4 << 20,
    )
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    while True:
        consumer.poll(timeout_ms=200)
        marks = [consumer.highwater(tp) for tp in partitions]
        if all(
            m is not None and consumer.position(tp) >= m
            for tp, m in zip(partitions, marks, strict=True)
        ):
            return consumer


def bench_latency(
    casebook: Casebook, cases: list[uuid.UUID], consumer: KafkaConsumer, commands: int
) -> list[float]:
    """(3): execute() returning to the consumer holding the record, in ms, per command."""
    samples = []
    for i in range(commands):
        case_id = cases[i % len(cases)]
        result = casebook.execute(
            c.AddNote(case_id, f"latency {i}", "internal"), c.CommandContext(AGENT)
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
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-commands", type=int, default=200)
    args = parser.parse_args()

    server = parse_database_url(args.database_url)
    dbname = f"casebook_bench_{uuid.uuid4().hex[:8]}"
    database = ensure_database(server, dbname)
    settings = Settings(database_url=database.url, log_level="warning")
    configure_logging(settings, stream="stderr")
    apply_migrations(database)
    results: dict[str, Any] = {"raw": [], "relay": []}
    try:
        casebook = Casebook.connect(database, settings)
        try:
            cases = store_events(casebook, args.cases, args.events)
            records = stored_records(casebook, settings)
            results["events"] = len(records)
            with embedded_broker() as broker:
                results["latency"] = rounds(
                    args, results, casebook, database, cases, records, broker.bootstrap_servers
                )
        finally:
            casebook.close()
    finally:
        drop(server, dbname)
    report(args, results, settings.topic_partitions)


def rounds(
    args: argparse.Namespace,
    results: dict[str, Any],
    casebook: Casebook,
    database: Database,
    cases: list[uuid.UUID],
    records: list[Record],
    bootstrap: str,
) -> list[float]:
    """Alternate raw and relay rounds (a fresh topic and relay name each), then (3)."""
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
        consumer = at_the_end(bootstrap, relay.topic)
        try:
            return bench_latency(casebook, cases, consumer, args.latency_commands)
        finally:
            consumer.close()
    finally:
        running.close()


def report(args: argparse.Namespace, results: dict[str, Any], partitions: int) -> None:
    raw, relay = statistics.median(results["raw"]), statistics.median(results["relay"])
    ratios = [r / b for r, b in zip(results["relay"], results["raw"], strict=True)]
    latency = results["latency"]
    print(
        f"broker: embedded tansu, {partitions} partitions; database: PostgreSQL, "
        f"{results['events']} events over {args.cases} cases, {args.rounds} rounds\n"
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
