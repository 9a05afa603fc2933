"""Audit trail: rebuild rate against raw consume + COPY, and as-of replay of a long case.

One command, two parts, each on a fresh PostgreSQL database, and one broker (embedded
tansu, or with --kafka apache a one-broker Apache Kafka):
(1) rebuild rate: N case events (default 10,000) over ~1,000 cases (open, assess, agent,
    respond, notes, escalate, resolve; no SLA events: the sla-events topic stays empty)
    relayed once to a topic; then alternating rounds of
    (a) raw: a kafka-python consumer assigned every partition (no group) reading the
        topic from the beginning in polls of the rebuild's batch size (1,000 records),
        each batch one transaction with one `COPY` of one row per event into a table
        shaped like `casebook_audit_entries` (payload as `changes`, a SHA-256 of the
        record as `hash`), committed;
    (b) `Rebuild(..., AuditProjection, source="kafka")` into a schema of its own
        (prepare, catch-up, switch-over; the schemas it leaves are dropped after it);
    reported as events/s and b/a per round and overall (target >= 0.5), counted from the
    start to the last committed batch: for (b) that is prepare + catch-up, with the
    switch-over (no live consumer, so only the table swap) timed apart;
(2) as-of replay: one case with 1,000 events (notes, responses, escalations, downgrades
    after unresponsive customers, resolutions, reopenings), then in alternating rounds
    `projections.audit.history.state_as_of` at the last version and at the instant of the middle
    version, against the raw `recorder.select_events` of the case's stored events and
    the eventsourcing repository's plain `get` (no cache), in ms.

Run: python -m bench.audit [--database-url URL] [--kafka tansu|apache] [--events N]
     [--cases N] [--rounds R] [--case-events N] [--replays N] [--parts 12] [--smoke]
(default: an embedded PostgreSQL in a temporary directory; --smoke: every part, tiny)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from eventsourcing.application import Repository
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from bench.infra import (
    add_arguments,
    bench_broker,
    bench_database,
    describe_database,
    fresh_database,
    parse_args,
)
from bench.projection import CATCH_UP_S, relayed_history
from bench.write import AGENT, seed
from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.rebuild import BATCH, Progress, Rebuild
from domain.cases import NoteVisibility
from domain.values import Severity
from entrypoints.logging import configure_logging
from entrypoints.rebuilds import tables_of
from projections.audit.history import CaseAsOf, Point, state_as_of
from projections.audit.projection import ENTRY_COLUMNS, AuditProjection

# --smoke: both parts, both sides of a round, a few seconds each.
SMOKE = {"events": 200, "cases": 20, "rounds": 1, "case_events": 50, "replays": 2}
# The audit log's columns, constraints and indexes, and entry ids from a sequence of its own.
RAW_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_raw_audit (LIKE casebook_audit_entries INCLUDING ALL)",
    "CREATE SEQUENCE IF NOT EXISTS bench_raw_audit_seq OWNED BY bench_raw_audit.entry_id",
    "ALTER TABLE bench_raw_audit ALTER entry_id SET DEFAULT nextval('bench_raw_audit_seq')",
)


@dataclass
class Run:
    """One side of one round: from start to the last committed batch."""

    events: int
    began: float
    ended: float = 0.0
    switch: float = 0.0  # (b) only: the switch-over after the catch-up, seconds

    @property
    def rate(self) -> float:
        return self.events / (self.ended - self.began)


def raw_row(headers: list[tuple[str, bytes]], value: bytes) -> tuple[Any, ...]:
    """One record as a row of the raw table: header fields, the payload as changes."""
    attributes = {k: v.decode() for k, v in headers}
    data = json.loads(value)
    by = data.pop("by", None) or {}
    at = data.pop("at", None)
    kind = attributes["ce_type"]
    subject = attributes["ce_subject"]
    recorded = datetime.fromisoformat(attributes["ce_time"])
    return (
        kind.split(".")[1],
        subject,
        int(attributes["ce_sequence"]),
        attributes["ce_id"],
        kind,
        subject,
        data.get("organisation_id"),
        datetime.fromisoformat(at) if at else recorded,
        recorded,
        by.get("principal_id"),
        by.get("role"),
        by.get("channel"),
        "recorded",
        json.dumps(data),
        "0" * 64,
        hashlib.sha256(value).hexdigest(),
        attributes.get("ce_casebookclient"),
        attributes.get("ce_casebookaddress"),
        attributes.get("ce_casebookrequestid"),
    )


def bench_raw(database: Database, bootstrap: str, topics: list[str], total: int) -> Run:
    """(a): read every partition from the start, COPY one row per event per batch."""
    with psycopg.connect(database.url, autocommit=True) as admin:
        for statement in RAW_TABLE:
            admin.execute(statement)
        admin.execute("TRUNCATE bench_raw_audit")
    copy = f"COPY bench_raw_audit ({ENTRY_COLUMNS}) FROM STDIN"
    run = Run(total, time.perf_counter())
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    conn = psycopg.connect(database.url)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        seen = 0
        deadline = time.monotonic() + CATCH_UP_S
        while seen < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the raw reader got {seen} of {total} in {CATCH_UP_S} s")
            polled = consumer.poll(timeout_ms=500, max_records=BATCH)
            records = [r for part in polled.values() for r in part]
            if not records:
                continue
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(copy) as out:
                for r in records:
                    out.write_row(raw_row(r.headers, r.value))
            seen += len(records)
            run.ended = time.perf_counter()
        return run
    finally:
        conn.close()
        consumer.close()


def bench_rebuild(database: Database, settings: Settings, total: int) -> Run:
    """(b): the audit rebuild from Kafka; catch-up and switch-over timed apart."""
    run = Run(total, time.perf_counter())

    def progress(p: Progress) -> None:
        run.ended = time.perf_counter()

    rebuild = Rebuild(
        database,
        settings,
        AuditProjection(),
        tables_of("audit", database),
        source="kafka",
        progress=progress,
    )
    outcome = rebuild.run()
    run.switch = time.perf_counter() - run.ended
    with psycopg.connect(database.url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM casebook_audit_entries").fetchone()
        entries = int(row[0]) if row else 0
        for schema in (outcome.schema, outcome.archive):
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    if outcome.events != total or entries != total:
        raise RuntimeError(f"the rebuild applied {outcome.events} and wrote {entries} of {total}")
    # Schemas are named by the second: the next round must not reuse this one's names.
    time.sleep(max(0.0, 1.05 - (time.perf_counter() - run.ended)))
    return run


def part_rebuild(args: argparse.Namespace, server: Database, bootstrap: str) -> dict[str, Any]:
    """(1): prepare, relay once, then alternate raw and rebuild rounds."""
    with fresh_database(server) as database:
        settings, total = relayed_history(database, bootstrap, args.cases, args.events)
        topics = [f"{settings.topic_prefix}.{t}" for t in AuditProjection.topics]
        raw: list[Run] = []
        rebuilt: list[Run] = []
        for _ in range(args.rounds):
            raw.append(bench_raw(database, bootstrap, topics, total))
            rebuilt.append(bench_rebuild(database, settings, total))
        return {"events": total, "raw": raw, "rebuild": rebuilt}


def long_case_commands(case_id: uuid.UUID, events: int) -> list[Any]:
    """Commands giving an opened case `events` events in all (its opening included)."""
    steps: list[Any] = [
        c.AssignSeverity(case_id, Severity.B),
        c.AssignAgent(case_id, AGENT.principal_id),
    ]
    cycle: list[Callable[[int], Any]] = [
        lambda i: c.AddNote(case_id, f"looked again ({i})", NoteVisibility.INTERNAL),
        lambda i: c.Respond(case_id, f"update {i}"),
        lambda i: c.EscalateSeverity(case_id, Severity.A, "more users affected"),
        lambda i: c.AddNote(case_id, "asked the customer for a trace", NoteVisibility.INTERNAL),
        lambda i: c.RecordCustomerUnresponsive(
            case_id, "a trace", datetime.now(UTC) - timedelta(days=2)
        ),
        lambda i: c.DowngradeSeverity(case_id, Severity.B, "no trace after two days"),
        lambda i: c.Respond(case_id, f"proposed fix {i}"),
        lambda i: c.Resolve(case_id, "fix applied", "fixed"),
        lambda i: c.Reopen(case_id, "it came back"),
        lambda i: c.AddNote(case_id, "customer called", NoteVisibility.INTERNAL),
    ]
    i = 0
    while len(steps) < events - 1:
        steps.append(cycle[i % len(cycle)](i))
        i += 1
    return steps


@dataclass
class Replays:
    """Milliseconds per call of each reading, over the rounds."""

    select: list[float] = field(default_factory=list)
    get: list[float] = field(default_factory=list)
    latest: list[float] = field(default_factory=list)
    middle: list[float] = field(default_factory=list)


def timed(call: Callable[[], Any], times: int) -> float:
    began = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - began) / times * 1000


def part_as_of(args: argparse.Namespace, server: Database) -> dict[str, Any]:
    """(2): one case with `--case-events` events; as-of against raw reads, alternating."""
    with fresh_database(server) as database:
        settings = Settings(database_url=database.url, log_level="warning")
        casebook = Casebook.connect(database, settings)
        try:
            (case_id,) = seed(casebook, 1)
            # A resolution records two events (the survey invitation with it): stop once
            # the case has its events rather than after one command per event.
            for command in long_case_commands(case_id, args.case_events):
                if casebook.execute(command, c.CommandContext(AGENT)).version >= args.case_events:
                    break
            events = list(casebook.store.events.get(case_id))
            if len(events) < args.case_events:
                raise RuntimeError(f"the case has {len(events)} events")
            middle_at = events[len(events) // 2 - 1].at
            latest = Point(None, len(events), "at", "version")
            middle = Point(middle_at, None, "at", "version")
            repository = Repository(event_store=casebook.store.events)
            checks: list[CaseAsOf] = [state_as_of(casebook, case_id, p) for p in (latest, middle)]
            if [check.version for check in checks] != [len(events), len(events) // 2]:
                raise RuntimeError(f"as-of versions {[check.version for check in checks]}")
            replays = Replays()
            for _ in range(args.rounds):
                replays.select.append(
                    timed(lambda: casebook.store.recorder.select_events(case_id), args.replays)
                )
                replays.get.append(timed(lambda: repository.get(case_id), args.replays))
                replays.latest.append(
                    timed(lambda: state_as_of(casebook, case_id, latest), args.replays)
                )
                replays.middle.append(
                    timed(lambda: state_as_of(casebook, case_id, middle), args.replays)
                )
            return {"events": len(events), "replays": replays}
        finally:
            casebook.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, kafka=True)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--case-events", type=int, default=1_000, help="(2) events of the case")
    parser.add_argument("--replays", type=int, default=10, help="(2) calls per round and reading")
    parser.add_argument("--parts", default="12", help="which parts to run, e.g. 2")
    args = parse_args(parser, SMOKE)

    configure_logging(Settings(log_level="warning"), stream="stderr")
    results: dict[str, Any] = {}
    with bench_database(args.database_url) as server:
        results["database"] = describe_database(server)
        if "1" in args.parts:
            with bench_broker(args.kafka) as broker:
                results["broker"] = broker.description
                results["rebuild"] = part_rebuild(args, server, broker.bootstrap_servers)
        if "2" in args.parts:
            results["as_of"] = part_as_of(args, server)
    broker_line = f"broker: {results['broker']}; " if "broker" in results else ""
    smoke = "; SMOKE RUN: tiny sizes, figures mean nothing" if args.smoke else ""
    print(f"{broker_line}database: {results['database']}; {args.rounds} rounds{smoke}\n")
    if "rebuild" in results:
        report_rebuild(args, results["rebuild"])
    if "as_of" in results:
        report_as_of(args, results["as_of"])


def per_round(figures: list[float], form: str = ".0f") -> str:
    return ", ".join(f"{f:{form}}" for f in figures)


def report_rebuild(args: argparse.Namespace, result: dict[str, Any]) -> None:
    raw: list[Run] = result["raw"]
    rebuilt: list[Run] = result["rebuild"]
    ratios = [b.rate / a.rate for a, b in zip(raw, rebuilt, strict=True)]
    a = statistics.median(r.rate for r in raw)
    b = statistics.median(r.rate for r in rebuilt)
    switch = statistics.median(r.switch for r in rebuilt) * 1000
    print(f"(1) {result['events']} events over {args.cases} cases (no SLA events), events/s")
    print("    from start to the last committed batch of 1,000:")
    print(f"    (a) raw consume + COPY            {a:8.0f}   1.00")
    print(f"    (b) audit rebuild from Kafka      {b:8.0f}   {b / a:.2f}  (target >= 0.5)")
    print(f"        a per round: {per_round([r.rate for r in raw])}")
    print(f"        b per round: {per_round([r.rate for r in rebuilt])}")
    print(f"        b/a per round: {per_round(ratios, '.2f')}")
    print(
        f"    (b) switch-over after the catch-up, not counted above: {switch:.0f} ms "
        f"(per round: {per_round([r.switch * 1000 for r in rebuilt])})\n"
    )


def report_as_of(args: argparse.Namespace, result: dict[str, Any]) -> None:
    replays: Replays = result["replays"]
    base = statistics.median(replays.select)
    print(f"(2) one case with {result['events']} events, ms per call (median of rounds):")
    rows = (
        ("raw recorder.select_events", replays.select),
        ("repository.get (no cache)", replays.get),
        ("as-of the last version", replays.latest),
        ("as-of the middle instant", replays.middle),
    )
    for name, figures in rows:
        ms = statistics.median(figures)
        print(f"    {name:28} {ms:7.1f}   x{ms / base:5.2f}   rounds: {per_round(figures, '.1f')}")


if __name__ == "__main__":
    main()
