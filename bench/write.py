"""Write throughput: raw eventsourcing vs casebook's service layer vs the HTTP API.

All three run in one process run, against the same fresh PostgreSQL database:
(a) raw: eventsourcing `Application.save` of an equivalent aggregate (one event
    per command, same payload shape), one save per command, one thread;
(b) service: `Casebook.execute` one command after another (load, rules, save with
    idempotency record and case index row);
(c) http: `casebook serve` in a subprocess, 16 concurrent clients posting notes
    with bearer keys and idempotency keys, after one untimed note per case (the new
    server process loads the cases, which (a) and (b) hold in their caches already);
    in rounds on the running server, each right after a round of (a).
Reported as events/s and ratios to (a) (medians of the per-round ratios for (c));
p50/p99 latency for (c) over all its rounds.

Run: python -m bench.write [--database-url URL] [--commands N] [--rounds R] [--workers W]
     [--smoke]
(default: an embedded PostgreSQL in a temporary directory; --smoke: every part, tiny)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.infra import (
    add_arguments,
    bench_database,
    describe_database,
    fresh_database,
    parse_args,
)
from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from casebook.store import eventsourcing_env
from domain.cases import NoteVisibility
from domain.values import Actor, Agreement, Category, Channel, ContactKind, Role
from entrypoints.logging import configure_logging

# --smoke: the same three parts and the HTTP server with its --workers, a few seconds each.
SMOKE = {"commands": 64, "rounds": 1, "cases": 16}
ADMIN = Actor("bench-admin", Role.ADMIN, Channel.API)
AGENT = Actor("bench-agent", Role.AGENT, Channel.API)
AGENT_ON_PHONE = Actor("bench-agent", Role.AGENT, Channel.PHONE)


class RawCase(Aggregate):
    """An aggregate shaped like a case note: actor, time and text per event."""

    @event("Opened")
    def __init__(self, title: str) -> None:
        self.title = title
        self.notes: list[str] = []

    @event("NoteAdded")
    def add_note(self, text: str, visibility: str, by: dict[str, str], at: datetime) -> None:
        self.notes.append(text)


class RawApp(Application[uuid.UUID]):
    name = "RawBench"


class RawBaseline:
    """(a): an eventsourcing application saving one aggregate per command."""

    def __init__(self, env: dict[str, str], cases: int) -> None:
        self.app = RawApp(env={k: v for k, v in env.items() if k != "APPLICATION_RECORDER_TOPIC"})
        self.aggregates = [RawCase(title=f"case {i}") for i in range(cases)]
        self.app.save(*self.aggregates)
        self.by = {"principal_id": AGENT.principal_id, "role": "agent", "channel": "api"}

    def run(self, commands: int) -> float:
        began = time.perf_counter()
        for i in range(commands):
            aggregate = self.aggregates[i % len(self.aggregates)]
            aggregate.add_note(
                text=f"note {i}", visibility="internal", by=self.by, at=datetime.now(UTC)
            )
            self.app.save(aggregate)
        return commands / (time.perf_counter() - began)


def seed(casebook: Casebook, cases: int) -> list[uuid.UUID]:
    """An organisation and `cases` opened cases: what every bench writes its events on."""
    org = casebook.execute(
        c.RegisterOrganisation(
            name="Bench Ltd",
            country="CN",
            timezone="Asia/Shanghai",
            agreement=Agreement.ADVANCED,
            admins=("bench-customer",),
            phones=("+86 10 5555 0000",),
            emails=("it@bench.example",),
        ),
        c.CommandContext(ADMIN),
    ).aggregate_id
    opened = []
    for i in range(cases):
        opened.append(
            casebook.execute(
                c.OpenRequest(
                    organisation_id=org,
                    requester_id="bench-customer",
                    category=Category.TECHNICAL,
                    title=f"case {i}",
                    description="benchmark",
                    contact_phone="+86 10 5555 0000",
                    contact_email="it@bench.example",
                    preferred_contact=ContactKind.EMAIL,
                    caller_phone="+86 10 5555 0000",
                ),
                c.CommandContext(AGENT_ON_PHONE),
            ).aggregate_id
        )
    return opened


def bench_service(
    casebook: Casebook, cases: list[uuid.UUID], commands: int, *, keyed: bool = False
) -> float:
    """(b): one command after another through `Casebook.execute`."""
    run = uuid.uuid4().hex[:6]
    began = time.perf_counter()
    for i in range(commands):
        casebook.execute(
            c.AddNote(cases[i % len(cases)], f"note {i}", NoteVisibility.INTERNAL),
            c.CommandContext(AGENT, idempotency_key=f"svc-{run}-{i}" if keyed else None),
        )
    return commands / (time.perf_counter() - began)


def in_clear(casebook: Casebook, cases: list[uuid.UUID], commands: int) -> float:
    """(b) with the notes' text stored in clear (no data key fetched, nothing sealed): the
    cost of sealing personal data is (b) over this."""
    keyring, casebook.store.mapper.keyring = casebook.store.mapper.keyring, None
    try:
        return bench_service(casebook, cases, commands)
    finally:
        casebook.store.mapper.keyring = keyring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, kafka=False)
    parser.add_argument("--commands", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="API processes for (c)")
    args = parse_args(parser, SMOKE)

    # Unconfigured, structlog prints every debug line: (b) would pay for a line per
    # command that (a) does not write.
    configure_logging(Settings(log_level="warning"), stream="stderr")
    results: dict[str, Any] = {}
    with bench_database(args.database_url) as server, fresh_database(server) as database:
        results["database"] = describe_database(server)
        settings = Settings(database_url=database.url, log_level="warning")
        env = eventsourcing_env(database, settings)
        baseline = RawBaseline(env, args.cases)
        casebook = Casebook.connect(database, settings)
        try:
            cases = seed(casebook, args.cases)
            # Alternate short rounds so a noisy neighbour hits both sides alike.
            per_round = args.commands // args.rounds
            rounds: dict[str, list[float]] = {"raw": [], "service": [], "keyed": [], "clear": []}
            for _ in range(args.rounds):
                rounds["raw"].append(baseline.run(per_round))
                rounds["service"].append(bench_service(casebook, cases, per_round))
                rounds["keyed"].append(bench_service(casebook, cases, per_round, keyed=True))
                rounds["clear"].append(in_clear(casebook, cases, per_round))
            results.update({name: statistics.median(rates) for name, rates in rounds.items()})
            results["ratios"] = [
                s / r for s, r in zip(rounds["service"], rounds["raw"], strict=True)
            ]
            if not args.skip_http:
                results["http"] = bench_http(args, database, settings, cases, baseline)
        finally:
            casebook.close()
    report(args, results)
    if results.get("http", {}).get("errors"):
        # A refused note means the API failed, not that it was slow: figures with
        # failures in them compare nothing, and a smoke run in CI must go red.
        sys.exit(f"bench.write: the HTTP API refused {results['http']['errors']} notes")


def bench_http(
    args: argparse.Namespace,
    database: Database,
    settings: Settings,
    cases: list[uuid.UUID],
    baseline: RawBaseline,
) -> dict[str, Any]:
    """(c) in rounds on one running server, each right after a round of (a)."""
    from bench.http_clients import HttpBench

    per_round = args.commands // args.rounds
    raw: list[float] = []
    http: list[float] = []
    with HttpBench(database, settings, cases, workers=args.workers) as server:
        for _ in range(args.rounds):
            raw.append(baseline.run(per_round))
            http.append(server.round(per_round))
        return {
            "clients": server.clients,
            "workers": server.workers,
            "rate": statistics.median(http),
            "raw": statistics.median(raw),
            "ratios": [h / r for h, r in zip(http, raw, strict=True)],
            "p50_ms": server.percentile_ms(0.50),
            "p99_ms": server.percentile_ms(0.99),
            "errors": server.errors,
        }


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Events/s and ratios to (a); the targets are in bench/README.md."""
    raw = results["raw"]
    smoke = "; SMOKE RUN: tiny sizes, figures mean nothing" if args.smoke else ""
    print(
        f"database: {results['database']}, {args.commands} commands over {args.cases} cases, "
        f"{args.rounds} rounds{smoke}\n"
    )
    print(f"(a) raw eventsourcing save      {raw:8.0f} events/s   1.00")
    print(
        f"(b) casebook service layer      {results['service']:8.0f} events/s   "
        f"{results['service'] / raw:.2f}  (target >= 0.8)"
    )
    print(
        f"    with idempotency keys       {results['keyed']:8.0f} events/s   "
        f"{results['keyed'] / raw:.2f}"
    )
    clear = results["clear"]
    print(
        f"    personal data in clear      {clear:8.0f} events/s   "
        f"{clear / raw:.2f}  (sealing: b/clear {results['service'] / clear:.2f})"
    )
    print("    b/a per round: " + ", ".join(f"{r:.2f}" for r in results["ratios"]))
    if "http" in results:
        http = results["http"]
        print(
            f"(c) HTTP API, {http['clients']} clients, {http['workers']} processes"
            f" {http['rate']:6.0f} events/s   "
            f"{statistics.median(http['ratios']):.2f}  (target >= 1.5)"
        )
        print(
            "    c/a per round: " + ", ".join(f"{r:.2f}" for r in http["ratios"]) + f"  "
            f"(a in those rounds: {http['raw']:.0f} events/s)"
        )
        print(
            f"    latency p50 {http['p50_ms']:.1f} ms, p99 {http['p99_ms']:.1f} ms, "
            f"errors {http['errors']}"
        )


if __name__ == "__main__":
    main()
