"""Acceptance of the relay at scale, against real PostgreSQL and real tansu, no mocks.

10,000 events over 500 cases arrive complete, in order per case and valid against the
published JSON Schemas; `casebook relay` processes killed with SIGKILL lose nothing and
duplicate at most the rounds in flight; a standby relay takes over from a killed one;
a broker restarted in the middle of publishing gets everything again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import jsonschema
import psycopg
import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from contract.case_event_schemas import json_schema
from contract.case_events import EVENT_CLASSES
from domain.cases.state import NoteVisibility
from entrypoints.broker import Broker
from relay.cloudevents import topic_name
from relay.relay import RELAY_NAME, Relay
from tests.integration.relay_support import (
    RunningRelay,
    headers,
    last_position,
    stored_ids,
    wait_for,
)
from tests.integration.topic_support import consume_all
from tests.integration.write_side import as_agent, open_request, register_organisation
from tests.kafka import ON_BOTH_BROKERS

# The relay reads the store with the same SQL on any PostgreSQL; the write side is already
# proven on both servers, so these long scenarios run on the default server only.
pytestmark = [pytest.mark.integration, pytest.mark.slow, ON_BOTH_BROKERS]

WRITERS = 16


# --- writing ------------------------------------------------------------------------


@pytest.fixture
def casebook(clean_database: Database) -> Iterator[Casebook]:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    yield casebook
    casebook.close()


def open_cases(casebook: Casebook, count: int) -> list[uuid.UUID]:
    """One organisation and `count` cases, opened from several threads (group commit)."""
    organisation_id = register_organisation(casebook)
    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(lambda _: open_request(casebook, organisation_id), range(count)))


def add_notes(casebook: Casebook, cases: list[uuid.UUID], notes: int, tag: str = "") -> None:
    """`notes` notes spread over `cases`; each writer thread keeps to its own cases."""

    def write(worker: int) -> None:
        mine = cases[worker::WRITERS]
        for i in range(worker, notes, WRITERS):
            case_id = mine[(i // WRITERS) % len(mine)]
            casebook.execute(
                c.AddNote(case_id, f"note {tag}{i}", NoteVisibility.INTERNAL), as_agent()
            )

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(min(WRITERS, len(cases)))))


def store_events(casebook: Casebook, cases: int, events: int) -> list[uuid.UUID]:
    """At least `events` stored events over `cases` cases (1 organisation event)."""
    opened = open_cases(casebook, cases)
    add_notes(casebook, opened, max(0, events - 1 - cases))
    return opened


# --- reading the store and the topic -----------------------------------------------


def relay_position(database: Database) -> int:
    with psycopg.connect(database.url) as conn:
        row = conn.execute(
            "SELECT position FROM casebook_relay_positions WHERE relay = %s", (RELAY_NAME,)
        ).fetchone()
    return int(row[0]) if row else 0


def ce_ids(records: list[Any]) -> list[str]:
    return [headers(r)["ce_id"] for r in records]


def duplicates(records: list[Any]) -> int:
    ids = ce_ids(records)
    return len(ids) - len(set(ids))


# --- relays in processes ------------------------------------------------------------


class RelayProcess:
    """`casebook relay` in a subprocess, killed with SIGKILL on request."""

    executable = Path(sys.executable).parent / "casebook"

    def __init__(
        self, database: Database, bootstrap: str, prefix: str, batch_max: int, log_level: str
    ) -> None:
        self.env = {
            **os.environ,
            "CASEBOOK_DATABASE_URL": database.url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CASEBOOK_TOPIC_PREFIX": prefix,
            "CASEBOOK_TOPIC_PARTITIONS": "3",
            "CASEBOOK_RELAY_BATCH_MAX": str(batch_max),
            "CASEBOOK_LOG_LEVEL": log_level,
        }
        self.outputs: list[IO[bytes]] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start (or restart) the process; each run writes its own log file."""
        self.outputs.append(tempfile.TemporaryFile())  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [str(self.executable), "relay"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.outputs[-1],
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        """What the current run logged so far."""
        fd = self.outputs[-1].fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def kill(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log()[-2000:]
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for output in self.outputs:
            output.close()


@pytest.fixture
def relay_processes() -> Iterator[Callable[..., RelayProcess]]:
    started: list[RelayProcess] = []

    def start(
        database: Database, bootstrap: str, prefix: str, batch_max: int, log_level: str = "warning"
    ) -> RelayProcess:
        started.append(RelayProcess(database, bootstrap, prefix, batch_max, log_level))
        return started[-1]

    yield start
    for each in started:
        each.close()


def unique_prefix() -> str:
    return f"acc{uuid.uuid4().hex[:10]}"


# --- (a) 10,000 events over 500 cases ----------------------------------------------


def test_ten_thousand_events_over_500_cases_arrive_complete_in_order_and_valid(
    casebook: Casebook, clean_database: Database, kafka_broker: Broker
) -> None:
    store_events(casebook, cases=500, events=10_000)
    expected = last_position(clean_database)
    assert expected >= 10_000
    settings = Settings(
        database_url=clean_database.url, topic_prefix=unique_prefix(), topic_partitions=3
    )
    relay = Relay(
        casebook.store, clean_database, settings, bootstrap_servers=kafka_broker.bootstrap_servers
    )
    running = RunningRelay(relay)
    try:
        assert wait_for(lambda: relay.position() == expected, timeout=60, every=0.2)
    finally:
        running.close()

    records = consume_all(kafka_broker.bootstrap_servers, relay.topic)

    assert set(ce_ids(records)) == stored_ids(clean_database)
    assert len(records) == expected  # one run, no kill: no duplicates either
    sequences: dict[str, list[int]] = {}
    validators: dict[str, jsonschema.protocols.Validator] = {}
    for record in records:
        h = headers(record)
        sequences.setdefault(h["ce_subject"], []).append(int(h["ce_sequence"]))
        kind = h["ce_type"]
        if kind not in validators:
            schema = json_schema(EVENT_CLASSES[kind])
            validators[kind] = jsonschema.Draft202012Validator(schema)
        validators[kind].validate(json.loads(record.value))
    assert len(sequences) == 501  # 500 cases and the organisation
    for subject, versions in sequences.items():
        assert versions == list(range(1, len(versions) + 1)), subject
    assert {"casebook.case.opened.v5", "casebook.case.note_added.v1"} <= validators.keys()


# --- (b) SIGKILL at random moments ---------------------------------------------------


def test_relays_killed_at_random_moments_lose_nothing_and_duplicate_only_rounds_in_flight(
    casebook: Casebook,
    clean_database: Database,
    kafka_broker: Broker,
    relay_processes: Callable[..., RelayProcess],
    chance: random.Random,
) -> None:
    batch_max, kills = 200, 5
    cases = open_cases(casebook, 100)
    add_notes(casebook, cases, 5_000, tag="before ")
    prefix = unique_prefix()
    # Still writing while the relays die: they are behind the whole time.
    writer = threading.Thread(target=add_notes, args=(casebook, cases, 5_000, "during "))
    writer.start()
    relay = relay_processes(clean_database, kafka_broker.bootstrap_servers, prefix, batch_max)
    try:
        for _ in range(kills):
            # Kill once this process has published something, a random moment later.
            moved_from = relay_position(clean_database)
            assert wait_for(
                lambda start=moved_from: relay_position(clean_database) > start,
                timeout=30,
            ), relay.log()[-2000:]
            time.sleep(chance.uniform(0, 0.3))
            relay.kill()
            relay.start()
    finally:
        writer.join()
    expected = last_position(clean_database)
    assert relay_position(clean_database) < expected, "the kills landed after the work"
    assert wait_for(lambda: relay_position(clean_database) == expected, 60), relay.log()[-2000:]

    records = consume_all(kafka_broker.bootstrap_servers, topic_name(prefix))
    assert set(ce_ids(records)) == stored_ids(clean_database)
    print(f"{kills} kills: {len(records)} records, {duplicates(records)} duplicates")
    assert duplicates(records) <= kills * batch_max
    for versions in sequences_without_repeats(records).values():
        assert versions == list(range(1, len(versions) + 1))


def sequences_without_repeats(records: list[Any]) -> dict[str, list[int]]:
    """Versions per subject in topic order, a republished record dropped as consumers do."""
    seen: set[str] = set()
    by_subject: dict[str, list[int]] = {}
    for record in records:
        h = headers(record)
        if h["ce_id"] not in seen:
            seen.add(h["ce_id"])
            by_subject.setdefault(h["ce_subject"], []).append(int(h["ce_sequence"]))
    return by_subject


# --- (c) two relays: one publishes, the other takes over ---------------------------


def test_a_standby_relay_takes_over_from_a_killed_one_within_seconds(
    casebook: Casebook,
    clean_database: Database,
    kafka_broker: Broker,
    relay_processes: Callable[..., RelayProcess],
) -> None:
    batch_max = 200
    cases = open_cases(casebook, 50)
    add_notes(casebook, cases, 1_000, tag="before ")
    prefix = unique_prefix()
    bootstrap = kafka_broker.bootstrap_servers
    first = relay_processes(clean_database, bootstrap, prefix, batch_max, "info")
    assert wait_for(lambda: relay_position(clean_database) > 0, 30), first.log()[-2000:]
    second = relay_processes(clean_database, bootstrap, prefix, batch_max, "info")
    assert wait_for(lambda: "relay.standby" in second.log(), 30), second.log()[-2000:]
    add_notes(casebook, cases, 500, tag="both up ")
    before_kill = last_position(clean_database)
    assert wait_for(lambda: relay_position(clean_database) == before_kill, 30)
    records = consume_all(bootstrap, topic_name(prefix))
    assert duplicates(records) == 0 and len(records) == before_kill  # one publisher only
    assert "relay.following" not in second.log()

    first.kill()
    killed_at = time.monotonic()
    add_notes(casebook, cases, 1_000, tag="after ")
    assert wait_for(lambda: relay_position(clean_database) > before_kill, 10, every=0.02), (
        second.log()[-2000:]
    )
    took_over_s = time.monotonic() - killed_at
    print(f"the standby published {took_over_s:.2f} s after the kill")
    assert took_over_s < 10
    expected = last_position(clean_database)
    assert wait_for(lambda: relay_position(clean_database) == expected, 30)

    records = consume_all(bootstrap, topic_name(prefix))
    assert set(ce_ids(records)) == stored_ids(clean_database)
    assert duplicates(records) <= batch_max
    assert "relay.following" in second.log()


# --- (d) the broker restarts in the middle of publishing ---------------------------


def test_a_broker_emptied_while_the_relay_is_behind_gets_everything(
    casebook: Casebook, clean_database: Database, own_broker: Broker
) -> None:
    store_events(casebook, cases=100, events=3_000)
    expected = last_position(clean_database)
    broker = own_broker  # this test's alone: emptying it touches no other test
    settings = Settings(
        database_url=clean_database.url,
        topic_prefix=unique_prefix(),
        topic_partitions=3,
        relay_batch_max=100,
    )
    relay = Relay(
        casebook.store, clean_database, settings, bootstrap_servers=broker.bootstrap_servers
    )
    running = RunningRelay(relay)
    try:
        assert wait_for(lambda: relay.position() >= 300, 30, every=0.01)
        broker.empty()  # topics and records are gone
        assert relay.position() < expected, "the relay finished before the restart"
        assert wait_for(lambda: relay.position() == expected, 90, every=0.2)
    finally:
        running.close()
    records = consume_all(broker.bootstrap_servers, relay.topic)
    assert set(ce_ids(records)) == stored_ids(clean_database)
