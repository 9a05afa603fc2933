"""Part (2) of bench/projection.py: command commit to queue visibility at a steady rate.

The relay (`casebook relay`) and the SLA tracker (`casebook consume sla`: consumer,
timer, outbox publisher) run as subprocesses, as in production; this process issues
commands on pre-opened cases at a fixed rate (an open-loop schedule: a late command is
sent at once, never skipped) from a few threads. A bench-only trigger on
casebook_sla_cases sends a NOTIFY with (case, version) when the consumer's transaction
commits; a listener thread takes the time each command's version becomes visible.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from bench.infra import BenchBroker, consumer_at_end, fresh_database
from bench.stats import percentile
from bench.write import AGENT, seed
from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.cases import NoteVisibility
from domain.values import Severity

ISSUERS = 4
CATCH_UP_S = 120.0
NOTIFY_TRIGGER = """
CREATE FUNCTION bench_sla_visible() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bench_sla', NEW.case_id::text || ' ' || NEW.version);
    RETURN NULL;
END $$;
CREATE TRIGGER bench_sla_visible AFTER INSERT OR UPDATE ON casebook_sla_cases
    FOR EACH ROW EXECUTE FUNCTION bench_sla_visible();
"""


def step(case_id: uuid.UUID, n: int) -> Any:
    """The n-th command (from 0) an agent sends on an opened case."""
    if n == 0:
        return c.AssignSeverity(case_id, (Severity.A, Severity.B, Severity.C)[hash(case_id) % 3])
    if n == 1:
        return c.AssignAgent(case_id, AGENT.principal_id)
    if n % 3 == 2:
        return c.Respond(case_id, f"update {n}")
    return c.AddNote(case_id, f"note {n}", NoteVisibility.INTERNAL)


class OnTopic:
    """When each (case, version) reached the case-events topic: splits relay from consumer."""

    def __init__(self, broker: BenchBroker, topic: str) -> None:
        self.arrived: dict[str, float] = {}  # ce_id -> when
        self.stop = threading.Event()
        self._consumer = consumer_at_end(broker, topic)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            for batch in self._consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for record in batch:
                    ce_id = dict(record.headers).get("ce_id")
                    if ce_id is not None:
                        self.arrived.setdefault(ce_id.decode(), now)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self._consumer.close()


class Visibility:
    """Listens for the trigger's NOTIFYs and matches them with issued commands."""

    def __init__(self, database: Database) -> None:
        self._conn = psycopg.connect(database.url, autocommit=True)
        self._conn.execute("LISTEN bench_sla")
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}  # case -> newest version, when
        self._waiting: dict[tuple[str, int], float] = {}  # (case, version) -> committed at
        self.samples: list[float] = []
        self.committed_at: dict[str, float] = {}  # ce_id -> when execute() returned
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def committed(self, case_id: str, version: int, at: float) -> None:
        with self._lock:
            self.committed_at[f"{case_id}:{version}"] = at
            seen = self._seen.get(case_id)
            if seen is not None and seen[0] >= version:  # already visible (no real race)
                self.samples.append(max(0.0, seen[1] - at) * 1000)
            else:
                self._waiting[(case_id, version)] = at

    def pending(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _listen(self) -> None:
        while not self.stop.is_set():
            for notify in self._conn.notifies(timeout=0.2):
                now = time.perf_counter()
                case_id, text = notify.payload.split()
                version = int(text)
                with self._lock:
                    self._seen[case_id] = (version, now)
                    for wanted in [k for k in self._waiting if k[0] == case_id]:
                        if wanted[1] <= version:
                            self.samples.append((now - self._waiting.pop(wanted)) * 1000)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self._conn.close()


def subprocesses(database: Database, bootstrap: str, prefix: str) -> list[subprocess.Popen[Any]]:
    """`casebook relay` and `casebook consume sla` on this database and topic prefix."""
    env = {
        **os.environ,
        "CASEBOOK_DATABASE_URL": database.url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CASEBOOK_TOPIC_PREFIX": prefix,
        "CASEBOOK_LOG_LEVEL": "warning",
        "CASEBOOK_LOG_FORMAT": "json",
    }
    cli = str(Path(sys.executable).parent / "casebook")
    return [
        subprocess.Popen([cli, *command], env=env, stdout=subprocess.DEVNULL)
        for command in (["relay"], ["consume", "sla"])
    ]


def caught_up(database: Database, cases: int) -> None:
    """Wait until the tracker shows every opened case."""
    deadline = time.monotonic() + CATCH_UP_S
    with psycopg.connect(database.url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM casebook_sla_cases").fetchone()
            if row and row[0] >= cases:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the SLA tracker did not catch up with the opened cases")
            time.sleep(0.1)


def drive(
    casebook: Casebook, cases: list[uuid.UUID], visibility: Visibility, rate: float, seconds: float
) -> tuple[int, float]:
    """Issue `rate` commands/s for `seconds`; (commands issued, achieved rate)."""
    total = int(rate * seconds)
    steps = [0] * len(cases)
    lock = threading.Lock()
    slots = iter(range(total))
    began = time.perf_counter() + 0.05

    def issue(_: int) -> None:
        while True:
            with lock:
                i = next(slots, None)
                if i is None:
                    return
                index = i % len(cases)
                n, steps[index] = steps[index], steps[index] + 1
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            result = casebook.execute(step(cases[index], n), c.CommandContext(AGENT))
            visibility.committed(str(result.aggregate_id), result.version, time.perf_counter())

    with ThreadPoolExecutor(ISSUERS) as pool:
        list(pool.map(issue, range(ISSUERS)))
    return total, total / (time.perf_counter() - began)


def part_latency(args: argparse.Namespace, server: Database, broker: BenchBroker) -> dict[str, Any]:
    """(2): subprocess relay and tracker, steady commands, commit-to-visible latency."""
    with fresh_database(server) as database:
        with psycopg.connect(database.url, autocommit=True) as conn:
            conn.execute(NOTIFY_TRIGGER)
        settings = Settings(database_url=database.url, log_level="warning")
        casebook = Casebook.connect(database, settings)
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        processes = subprocesses(database, broker.bootstrap_servers, prefix)
        try:
            opened = seed(casebook, args.cases)
            caught_up(database, len(opened))
            visibility = Visibility(database)
            on_topic = OnTopic(broker, f"{prefix}.case-events.v1") if args.split else None
            try:
                issued, achieved = drive(casebook, opened, visibility, args.rate, args.seconds)
                deadline = time.monotonic() + 30
                while visibility.pending() and time.monotonic() < deadline:
                    time.sleep(0.05)
                missing = visibility.pending()
            finally:
                if on_topic is not None:
                    on_topic.close()
                visibility.close()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=40)
            casebook.close()
    arrived = on_topic.arrived if on_topic is not None else {}
    relayed = [
        (arrived[ce_id] - at) * 1000
        for ce_id, at in visibility.committed_at.items()
        if ce_id in arrived
    ]
    return {
        "issued": issued,
        "rate": achieved,
        "samples": visibility.samples,
        "relayed": relayed,
        "missing": missing,
        "target_rate": args.rate,
    }


def report_latency(results: dict[str, Any]) -> None:
    samples = results["samples"]
    print(
        f"(2) commit -> queue row at {results['target_rate']:.0f} commands/s, relay and SLA "
        f"tracker as subprocesses: {results['issued']} commands, achieved "
        f"{results['rate']:.0f}/s, {results['missing']} not visible within 30 s"
    )
    print(
        f"    p50 {percentile(samples, 0.5):.1f} ms, p95 {percentile(samples, 0.95):.1f} ms, "
        f"p99 {percentile(samples, 0.99):.1f} ms (target <= 250), max {max(samples):.1f} ms"
    )
    relayed = results["relayed"]
    if not relayed:
        return
    print(
        f"    of which commit -> on the topic (relay): p50 {percentile(relayed, 0.5):.1f} ms, "
        f"p99 {percentile(relayed, 0.99):.1f} ms ({len(relayed)} seen by a side reader)"
    )
