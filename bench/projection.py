"""SLA projection: apply rate against raw consume + executemany, live latency, timer tick.

One command, three parts, each on a fresh PostgreSQL database, and one broker (embedded
tansu, or with --kafka apache a one-broker Apache Kafka):
(1) apply rate: N case events (default 10,000) over ~1,000 cases (open, assess, agent,
    respond, notes, escalate, resolve) relayed once to a topic; then alternating rounds of
    (a) raw: a kafka-python consumer reading the topic from the beginning in batches of
        `consumer_batch_max` records, each batch one transaction of `executemany` upserts,
        one row per event, into a table shaped like `casebook_sla_cases`, committed;
    (b) the real SLA consumer: `ConsumerRuntime` + `SlaProjection` from offset 0 (its
        tables and the runtime's truncated first) until every record's offset is stored
        (decode, dedupe, clocks, history, outbox, offsets);
    reported as events/s and b/a per round and overall (target >= 0.5), counted after the
    first stored batch (the broker holds a consumer-group join for seconds; the raw
    reader assigns partitions itself), and over the whole run from start;
(2) latency (bench/projection_latency.py): the relay and the SLA tracker (`casebook relay`,
    `casebook consume sla`) as subprocesses; commands at a steady rate (default 200/s)
    from this process, each timed from `execute()` returning (committed) until its
    case's row in casebook_sla_cases carries its version (target p99 <= 250 ms);
    `--split` adds a side reader of the topic that times commit -> topic (the relay);
(3) timer (bench/projection_timer.py): 100,000 open clocks, 1 %, 0.1 % and none of them
    due per round; `SlaTimer.tick` against the raw indexed SELECT of the due rows
    (target <= 100 ms with 1 % due).

Run: python -m bench.projection [--database-url URL] [--kafka tansu|apache] [--events N]
     [--rounds R] [--rate N] [--seconds S] [--clocks N] [--parts 123] [--split] [--smoke]
(default: an embedded PostgreSQL in a temporary directory; --smoke: every part, tiny,
with --split)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition

from bench.infra import (
    add_arguments,
    bench_broker,
    bench_database,
    describe_database,
    fresh_database,
    parse_args,
)
from bench.relay import Position, RunningRelay, wait_for_position
from bench.write import AGENT, seed
from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.runtime import ConsumerRuntime
from domain.cases import NoteVisibility
from domain.values import Severity
from entrypoints.logging import configure_logging
from projections.sla.policies import target_book
from projections.sla.projection import SlaProjection
from relay.relay import Relay

WRITERS = 16
# --smoke: all three parts (the latency part with its side reader) at a few seconds each;
# events enough for a few consumer batches of 500, since (1) counts from the first batch.
SMOKE = {
    "events": 1_500,
    "cases": 100,
    "rounds": 1,
    "rate": 20.0,
    "seconds": 2.0,
    "clocks": 2_000,
    "split": True,
}
# How long reading the whole topic may take before a round counts as stuck, not slow.
CATCH_UP_S = 300.0
SEVERITIES = (Severity.C, Severity.B, Severity.B, Severity.A)


def case_commands(case_id: uuid.UUID, i: int) -> list[Any]:
    """What agents do with an opened case, in order: 9 or 10 commands per case.

    A resolved case is closed to notes (rule resolved-case-is-closed), so only the cases
    left open get the follow-up note; a note after the resolution was refused.
    """
    steps: list[Any] = [
        c.AssignSeverity(case_id, SEVERITIES[i % len(SEVERITIES)]),
        c.AssignAgent(case_id, AGENT.principal_id),
        c.AddNote(case_id, "looked at the logs", NoteVisibility.INTERNAL),
        c.Respond(case_id, "We are on it"),
        c.AddNote(case_id, "customer sent a trace", NoteVisibility.INTERNAL),
    ]
    if i % 5 == 0 and SEVERITIES[i % len(SEVERITIES)] is not Severity.A:
        steps.append(c.EscalateSeverity(case_id, Severity.A, "more users affected"))
    steps += [
        c.AddNote(case_id, "workaround found", NoteVisibility.INTERNAL),
        c.Respond(case_id, "Try this"),
        c.AddNote(case_id, "customer confirms", NoteVisibility.INTERNAL),
    ]
    if i % 2 == 0:
        steps.append(c.Resolve(case_id, "workaround accepted", "workaround"))
    else:
        steps.append(c.AddNote(case_id, "follow-up call booked", NoteVisibility.INTERNAL))
    return steps


def work_cases(casebook: Casebook, cases: list[uuid.UUID], events: int) -> int:
    """Run each case's commands (cases in parallel) until about `events` are stored."""
    scripts = [case_commands(case_id, i) for i, case_id in enumerate(cases)]
    budget = max(0, events - 1 - len(cases))
    plan = [s[step] for step in range(max(map(len, scripts))) for s in scripts if step < len(s)]
    plan = plan[:budget]
    by_case: dict[uuid.UUID, list[Any]] = {}
    for command in plan:
        by_case.setdefault(command.case_id, []).append(command)
    queues = [list(by_case.get(case_id, [])) for case_id in cases]

    def write(worker: int) -> None:
        for commands in queues[worker::WRITERS]:
            for command in commands:
                casebook.execute(command, c.CommandContext(AGENT))

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    return 1 + len(cases) + len(plan)


def relayed_history(
    database: Database, bootstrap: str, cases: int, events: int
) -> tuple[Settings, int]:
    """Settings under a fresh topic prefix and a worked history relayed once; its size."""
    settings = Settings(
        database_url=database.url,
        log_level="warning",
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}",
    )
    casebook = Casebook.connect(database, settings)
    try:
        work_cases(casebook, seed(casebook, cases), events)
        return settings, relay_once(casebook, database, settings, bootstrap)
    finally:
        casebook.close()


def relay_once(casebook: Casebook, database: Database, settings: Settings, bootstrap: str) -> int:
    """Publish every stored event to the settings' topic; the last notification id."""
    last = casebook.store.recorder.max_notification_id() or 0
    relay = Relay(casebook.store, database, settings, bootstrap_servers=bootstrap)
    position = Position(database, relay.name)
    running = RunningRelay(relay)
    try:
        wait_for_position(running, position, last)
    finally:
        position.close()
        running.close()
    return last


RAW_TABLE = """
CREATE TABLE IF NOT EXISTS bench_raw_cases (
    case_id uuid PRIMARY KEY, organisation_id uuid, category text, severity text,
    status text, agent_id text, opened_at timestamptz, first_response_at timestamptz,
    resolved_at timestamptz, unresponsive_since timestamptz, due_at timestamptz,
    version integer NOT NULL)
"""
RAW_UPSERT = (
    "INSERT INTO bench_raw_cases (case_id, organisation_id, category, severity, status, "
    "agent_id, opened_at, first_response_at, resolved_at, unresponsive_since, due_at, version) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (case_id) DO UPDATE "
    "SET severity = coalesce(EXCLUDED.severity, bench_raw_cases.severity), "
    "status = EXCLUDED.status, agent_id = coalesce(EXCLUDED.agent_id, bench_raw_cases.agent_id), "
    "first_response_at = coalesce(bench_raw_cases.first_response_at, "
    "EXCLUDED.first_response_at), resolved_at = EXCLUDED.resolved_at, "
    "unresponsive_since = EXCLUDED.unresponsive_since, due_at = EXCLUDED.due_at, "
    "version = EXCLUDED.version"
)


def raw_row(headers: list[tuple[str, bytes]], value: bytes) -> tuple[Any, ...] | None:
    """One case event as a row of the raw table (None for organisation events)."""
    attributes = dict(headers)
    kind = attributes["ce_type"].decode()
    if not kind.startswith("casebook.case."):
        return None
    data = json.loads(value)
    at = datetime.fromisoformat(data["at"])
    name = kind.split(".")[2]
    return (
        attributes["ce_subject"].decode(),
        data.get("organisation_id"),
        data.get("category"),
        data.get("severity"),
        "resolved" if name == "resolved" else "open",
        data.get("agent_id"),
        at if name == "opened" else None,
        at if name == "responded" else None,
        at if name == "resolved" else None,
        None,
        at,
        int(attributes["ce_sequence"].decode()),
    )


@dataclass
class Run:
    """One side of one round: events over the whole run and after the first stored batch.

    `steady` leaves out startup (for the consumer, its group join, which the broker holds
    for a few seconds) and the first batch: (events - first) / (last stored - first stored).
    """

    events: int
    began: float
    first_at: float = 0.0
    first: int = 0
    ended: float = 0.0

    def stored(self, count: int) -> None:
        now = time.perf_counter()
        if not self.first:
            self.first_at, self.first = now, count
        self.ended = now

    @property
    def wall(self) -> float:
        return self.events / (self.ended - self.began)

    @property
    def steady(self) -> float:
        return (self.events - self.first) / (self.ended - self.first_at)

    @property
    def startup(self) -> float:
        return self.first_at - self.began


def bench_raw(database: Database, bootstrap: str, topic: str, total: int, batch: int) -> Run:
    """(a): read the whole topic and upsert one row per event, a transaction per batch."""
    with psycopg.connect(database.url, autocommit=True) as admin:
        admin.execute(RAW_TABLE)
        admin.execute("TRUNCATE bench_raw_cases")
    run = Run(total, time.perf_counter())
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    conn = psycopg.connect(database.url)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        seen = 0
        deadline = time.monotonic() + CATCH_UP_S
        while seen < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the raw reader got {seen} of {total} in {CATCH_UP_S} s")
            polled = consumer.poll(timeout_ms=500, max_records=batch)
            records = [r for part in polled.values() for r in part]
            if not records:
                continue
            rows = [row for r in records if (row := raw_row(r.headers, r.value)) is not None]
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(RAW_UPSERT, rows)
            seen += len(records)
            run.stored(seen)
        return run
    finally:
        conn.close()
        consumer.close()


SLA_TABLES = (
    "casebook_sla_organisations, casebook_sla_cases, casebook_sla_clocks, "
    "casebook_sla_clock_history, casebook_sla_outbox, casebook_sla_outbox_offsets, "
    "casebook_consumer_offsets, casebook_consumer_sequences, casebook_consumer_parked_events, "
    "casebook_consumer_parked, casebook_consumer_dead_letters, casebook_consumer_status"
)


def bench_consumer(database: Database, settings: Settings, total: int) -> tuple[Run, int]:
    """(b): the SLA consumer from offset 0 until every record's offset is stored.

    Also returns the number of case rows it wrote (a check that every case arrived).
    """
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {SLA_TABLES}")
        runtime = ConsumerRuntime(SlaProjection(target_book(settings)), database, settings)
        stop = threading.Event()
        run = Run(total, time.perf_counter())
        thread = threading.Thread(target=runtime.run, args=(stop,), daemon=True)
        thread.start()
        stored = 0
        deadline = time.monotonic() + CATCH_UP_S
        while stored < total:
            if time.monotonic() > deadline:
                stop.set()
                raise RuntimeError(f"the SLA consumer stored {stored} of {total} in {CATCH_UP_S} s")
            time.sleep(0.002)
            row = conn.execute(
                "SELECT coalesce(sum(next_offset), 0) FROM casebook_consumer_offsets "
                "WHERE consumer_group = %s",
                (runtime.group,),
            ).fetchone()
            if row and int(row[0]) > stored:
                stored = int(row[0])
                run.stored(stored)
            if not thread.is_alive():
                raise RuntimeError("the SLA consumer stopped before it caught up")
        stop.set()
        thread.join(timeout=30)
        row = conn.execute("SELECT count(*) FROM casebook_sla_cases").fetchone()
        return run, int(row[0]) if row else 0


def part_apply(args: argparse.Namespace, server: Database, bootstrap: str) -> dict[str, Any]:
    """(1): prepare, relay once, then alternate raw and consumer rounds."""
    with fresh_database(server) as database:
        settings, total = relayed_history(database, bootstrap, args.cases, args.events)
        topic = f"{settings.topic_prefix}.case-events.v1"
        raw: list[Run] = []
        sla: list[Run] = []
        for _ in range(args.rounds):
            raw.append(bench_raw(database, bootstrap, topic, total, settings.consumer_batch_max))
            run, rows = bench_consumer(database, settings, total)
            if rows != args.cases:
                raise RuntimeError(f"the SLA consumer wrote {rows} cases, not {args.cases}")
            sla.append(run)
        return {"events": total, "raw": raw, "sla": sla}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, kafka=True)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0, help="(2) commands/s")
    parser.add_argument("--seconds", type=float, default=25.0, help="(2) duration")
    parser.add_argument(
        "--split", action="store_true", help="(2) also time commit -> topic (a side reader)"
    )
    parser.add_argument("--clocks", type=int, default=100_000, help="(3) open clocks")
    parser.add_argument("--parts", default="123", help="which parts to run, e.g. 13")
    args = parse_args(parser, SMOKE)

    from bench.projection_latency import part_latency
    from bench.projection_timer import part_timer

    configure_logging(Settings(log_level="warning"), stream="stderr")
    results: dict[str, Any] = {}
    with bench_database(args.database_url) as server:
        results["database"] = describe_database(server)
        if "1" in args.parts or "2" in args.parts:
            with bench_broker(args.kafka) as broker:
                results["broker"] = broker.description
                if "1" in args.parts:
                    results["apply"] = part_apply(args, server, broker.bootstrap_servers)
                if "2" in args.parts:
                    results["latency"] = part_latency(args, server, broker)
        if "3" in args.parts:
            with fresh_database(server) as database:
                results["timer"] = part_timer(args, database)
    report(args, results)
    missing = results.get("latency", {}).get("missing")
    if missing:
        # A command whose version never showed is a lost or stuck event, not a slow one.
        sys.exit(f"bench.projection: {missing} commands never became visible in the tracker")


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Each part's figures and ratios to its baseline; the targets are in bench/README.md."""
    from bench.projection_latency import report_latency
    from bench.projection_timer import report_timer

    broker = f"broker: {results['broker']}; " if "broker" in results else ""
    smoke = "; SMOKE RUN: tiny sizes, figures mean nothing" if args.smoke else ""
    print(f"{broker}database: {results['database']}; {args.rounds} rounds{smoke}\n")
    if "apply" in results:
        report_apply(args, results["apply"])
    if "latency" in results:
        report_latency(results["latency"])
    if "timer" in results:
        report_timer(results["timer"])


def report_apply(args: argparse.Namespace, apply: dict[str, Any]) -> None:
    raw: list[Run] = apply["raw"]
    sla: list[Run] = apply["sla"]

    def median(runs: list[Run], figure: str) -> float:
        return float(statistics.median(getattr(r, figure) for r in runs))

    def per_round(figures: list[float], form: str = ".0f") -> str:
        return ", ".join(f"{f:{form}}" for f in figures)

    steady = [b.steady / a.steady for a, b in zip(raw, sla, strict=True)]
    wall = [b.wall / a.wall for a, b in zip(raw, sla, strict=True)]
    a, b = median(raw, "steady"), median(sla, "steady")
    print(f"(1) {apply['events']} events over {args.cases} cases, batches of 500, events/s")
    print("    after the first stored batch (startup and group join left out):")
    print(f"    (a) raw consume + executemany   {a:8.0f}   1.00")
    print(f"    (b) SLA consumer from offset 0  {b:8.0f}   {b / a:.2f}  (target >= 0.5)")
    print(f"        a per round: {per_round([r.steady for r in raw])}")
    print(f"        b per round: {per_round([r.steady for r in sla])}")
    print(f"        b/a per round: {per_round(steady, '.2f')}")
    a, b = median(raw, "wall"), median(sla, "wall")
    print("    whole run, from start to the last stored offset:")
    print(f"    (a) {a:8.0f}   (b) {b:8.0f}   b/a {b / a:.2f}  per round: {per_round(wall, '.2f')}")
    print(
        f"    first batch stored after: (a) {median(raw, 'startup'):.2f} s, "
        f"(b) {median(sla, 'startup'):.2f} s (its consumer-group join)"
    )


if __name__ == "__main__":
    main()
