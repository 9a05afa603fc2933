"""Acceptance of the SLA tracker against real PostgreSQL and a real tansu broker, no mocks.

`casebook consume sla` killed with SIGKILL at random moments while it applies a
10,000-event run ends with the projection a rebuild from scratch makes, and its outbox
publishes every SLA event exactly once; a malformed event on the real case-events topic
parks its case only, and `casebook dlq replay --skip` un-parks it.
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
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from kafka import KafkaProducer

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.runtime import ConsumerRuntime
from domain.cases.state import NoteVisibility
from domain.values import Severity
from entrypoints.broker import Broker
from entrypoints.migrate import apply_migrations
from entrypoints.sla_service import SlaService
from messaging.kafka_clients import ensure_topic
from projections.sla.policies import target_book
from projections.sla.projection import SlaProjection
from relay.cloudevents import Record, record_for, topic_name
from relay.relay import Relay
from tests.integration.conftest import CliRunner, DatabaseFactory
from tests.integration.consumer_support import running
from tests.integration.relay_support import RunningRelay, headers, last_position, wait_for
from tests.integration.topic_support import consume_all
from tests.integration.workload_support import (
    projected_versions,
    query,
    store_cases,
    store_versions,
)
from tests.integration.write_side import as_agent, open_request, register_organisation
from tests.kafka import ON_BOTH_BROKERS

# The runtime and the projection run the same SQL on any PostgreSQL (both servers are
# covered by the SLA and consumer tests); these long scenarios use the default server.
pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]

KILLS = 5
GROUP = "sla"
SLA_TABLES = {
    "organisations": "SELECT * FROM casebook_sla_organisations ORDER BY organisation_id",
    "cases": "SELECT * FROM casebook_sla_cases ORDER BY case_id",
    "clocks": "SELECT * FROM casebook_sla_clocks ORDER BY case_id, metric",
    "history": "SELECT * FROM casebook_sla_clock_history ORDER BY event_id",
    # Serial ids and publication times differ between runs by nature.
    "outbox": "SELECT event_id, type, subject, time, payload FROM casebook_sla_outbox"
    " ORDER BY event_id",
    "sequences": "SELECT subject, sequence FROM casebook_consumer_sequences"
    " WHERE consumer_group = 'sla' ORDER BY subject",
}


def unique_prefix() -> str:
    return f"sla{uuid.uuid4().hex[:10]}"


@pytest.fixture
def casebook(clean_database: Database) -> Iterator[Casebook]:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    yield casebook
    casebook.close()


# --- a 10,000-event run ------------------------------------------------------------


def consumed(database: Database) -> int:
    """Records the SLA group has consumed, over all partitions (its stored offsets)."""
    rows = query(
        database,
        "SELECT coalesce(sum(next_offset), 0) FROM casebook_consumer_offsets"
        " WHERE consumer_group = %s",
        GROUP,
    )
    return int(rows[0][0])


def unpublished(database: Database) -> int:
    return int(
        query(database, "SELECT count(*) FROM casebook_sla_outbox WHERE published_at IS NULL")[0][0]
    )


class ConsumerProcess:
    """`casebook consume sla` in a subprocess, killed with SIGKILL on request."""

    executable = Path(sys.executable).parent / "casebook"

    def __init__(self, database: Database, bootstrap: str, prefix: str) -> None:
        self.env = {
            **os.environ,
            "CASEBOOK_DATABASE_URL": database.url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CASEBOOK_TOPIC_PREFIX": prefix,
            "CASEBOOK_TOPIC_PARTITIONS": "3",
            # Small batches: many transactions, so a kill lands in the middle of one.
            "CASEBOOK_CONSUMER_BATCH_MAX": "100",
            # tansu: a killed member must leave the group quickly.
            "CASEBOOK_CONSUMER_SESSION_TIMEOUT_MS": "2000",
            "CASEBOOK_LOG_LEVEL": "warning",
        }
        self.outputs: list[IO[bytes]] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start (or restart) the process; each run writes its own log file."""
        self.outputs.append(tempfile.TemporaryFile())  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [str(self.executable), "consume", "sla"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.outputs[-1],
            stderr=subprocess.STDOUT,
        )

    def log(self, run: int = -1) -> str:
        """What a run (the current one by default) logged so far."""
        fd = self.outputs[run].fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def kill(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM, as an operator would; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(45)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for output in self.outputs:
            output.close()


@pytest.fixture
def consumer_processes() -> Iterator[Callable[[Database, str, str], ConsumerProcess]]:
    started: list[ConsumerProcess] = []

    def start(database: Database, bootstrap: str, prefix: str) -> ConsumerProcess:
        started.append(ConsumerProcess(database, bootstrap, prefix))
        return started[-1]

    yield start
    for each in started:
        each.close()


def relay_everything(
    casebook: Casebook, database: Database, settings: Settings, broker: Broker
) -> None:
    """Publish every stored event to `<prefix>.case-events.v1` and wait until it is there."""
    relay = Relay(casebook.store, database, settings, bootstrap_servers=broker.bootstrap_servers)
    expected = last_position(database)
    thread = RunningRelay(relay)
    try:
        assert wait_for(lambda: relay.position() == expected, timeout=60, every=0.2)
    finally:
        thread.close()


def rebuild(database: Database, settings: Settings, expected: dict[str, int]) -> None:
    """The SLA projection alone (no outbox publisher) from the topic's beginning."""
    rebuilt = settings.model_copy(update={"database_url": database.url})
    runtime = ConsumerRuntime(SlaProjection(target_book(rebuilt)), database, rebuilt)
    with running(runtime):
        assert wait_for(lambda: projected_versions(database) == expected, 60, every=0.2)


def differences(first: list[Any], second: list[Any]) -> str:
    only_first, only_second = set(first) - set(second), set(second) - set(first)
    return (
        f"{len(only_first)} rows only in the killed run, e.g. {sorted(only_first, key=str)[:2]}; "
        f"{len(only_second)} only in the rebuild, e.g. {sorted(only_second, key=str)[:2]}"
    )


@pytest.mark.slow
def test_a_consumer_killed_mid_batch_five_times_matches_a_rebuild_and_publishes_once(
    casebook: Casebook,
    clean_database: Database,
    new_database: DatabaseFactory,
    own_broker: Broker,
    consumer_processes: Callable[[Database, str, str], ConsumerProcess],
    chance: random.Random,
) -> None:
    organisation_id = store_cases(casebook, cases=500, events_per_case=20)
    expected = store_versions(clean_database, organisation_id)
    total = last_position(clean_database)
    assert len(expected) == 500 and total >= 10_000
    settings = Settings(
        database_url=clean_database.url,
        kafka_bootstrap_servers=own_broker.bootstrap_servers,
        topic_prefix=unique_prefix(),
        topic_partitions=3,
        consumer_session_timeout_ms=2000,
    )
    relay_everything(casebook, clean_database, settings, own_broker)

    consumer = consumer_processes(
        clean_database, own_broker.bootstrap_servers, settings.topic_prefix
    )
    killed_at: list[int] = []  # records consumed when each kill landed
    for _ in range(KILLS):
        # Kill once this run has stored some batches, a random moment later (mostly while
        # it applies one): the kills spread over the first three quarters of the run.
        target = consumed(clean_database) + chance.randint(1, total // (KILLS + 2))
        assert wait_for(lambda n=target: consumed(clean_database) >= n, 60), consumer.log()[-3000:]
        time.sleep(chance.uniform(0, 0.1))
        consumer.kill()
        killed_at.append(consumed(clean_database))
        consumer.start()
    assert killed_at[-1] < total, "the kills landed after the work"
    assert wait_for(lambda: projected_versions(clean_database) == expected, 90, every=0.2), (
        consumer.log()[-3000:]
    )
    assert wait_for(lambda: unpublished(clean_database) == 0, 30), consumer.log()[-3000:]
    assert consumer.stop() == 0, consumer.log()[-3000:]
    recovered = sum("outbox.recovered" in consumer.log(run) for run in range(KILLS + 1))
    print(
        f"{KILLS} kills at {killed_at} of {total} records; "
        f"{recovered} restarts marked SLA events a killed publisher had sent"
    )

    rebuilt = new_database()
    apply_migrations(rebuilt)
    rebuild(rebuilt, settings, expected)

    for name, sql in SLA_TABLES.items():
        killed_rows, rebuilt_rows = query(clean_database, sql), query(rebuilt, sql)
        assert killed_rows, name
        assert killed_rows == rebuilt_rows, f"{name}: {differences(killed_rows, rebuilt_rows)}"
    for database in (clean_database, rebuilt):
        assert query(database, "SELECT count(*) FROM casebook_consumer_dead_letters") == [(0,)]

    records = consume_all(
        own_broker.bootstrap_servers, topic_name(settings.topic_prefix, "sla-events.v1")
    )
    published = Counter(headers(record)["ce_id"] for record in records)
    outbox = {
        event_id
        for (event_id,) in query(clean_database, "SELECT event_id FROM casebook_sla_outbox")
    }
    twice = [event_id for event_id, times in published.items() if times > 1]
    print(f"{len(outbox)} SLA events, {len(records)} records on their topic")
    assert not twice, f"{len(twice)} SLA events published more than once, e.g. {twice[:3]}"
    assert set(published) == outbox


# --- a poison event on the real topic ----------------------------------------------


def stored_records(casebook: Casebook) -> list[Record]:
    """Every stored event as the relay would publish it, in store order."""
    recorder = casebook.store.recorder
    return [
        record_for(
            casebook.store.mapper.to_domain_event(n), n.id, source="/test", include_personal=False
        )
        for n in recorder.select_notifications(start=1, limit=1_000_000)
    ]


def without_field(record: Record, field: str) -> Record:
    """The same CloudEvent with `field` removed from its payload."""
    payload = json.loads(record.value)
    del payload[field]
    return Record(record.key, json.dumps(payload).encode(), record.headers, record.position)


def send(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for record in records:
            producer.send(topic, key=record.key, value=record.value, headers=record.headers)
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def sla_case(database: Database, case_id: uuid.UUID) -> tuple[Any, ...] | None:
    """(version, agent, state of the initial-response clock) of a projected case."""
    rows = query(
        database,
        "SELECT c.version, c.agent_id, k.state FROM casebook_sla_cases c"
        " LEFT JOIN casebook_sla_clocks k ON k.case_id = c.case_id"
        " AND k.metric = 'initial_response' WHERE c.case_id = %s",
        case_id,
    )
    return rows[0] if rows else None


def test_a_malformed_event_parks_its_case_only_and_a_skipping_replay_unparks_it(
    casebook: Casebook,
    clean_database: Database,
    kafka_broker: Broker,
    cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    settings = Settings(
        database_url=clean_database.url,
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=unique_prefix(),
        topic_partitions=3,
        consumer_session_timeout_ms=2000,
    )
    topic = topic_name(settings.topic_prefix)
    ensure_topic(settings, bootstrap, topic, "test")
    organisation_id = register_organisation(casebook)
    x, y = open_request(casebook, organisation_id), open_request(casebook, organisation_id)
    casebook.execute(c.AssignSeverity(x, Severity.B), as_agent())
    before = stored_records(casebook)
    x_version = casebook.execute(c.AddNote(x, "logs", NoteVisibility.INTERNAL), as_agent()).version
    casebook.execute(c.Respond(x, "Looking into it"), as_agent())
    casebook.execute(c.AssignAgent(x, "bob"), as_agent())
    casebook.execute(c.AssignSeverity(y, Severity.C), as_agent())
    after = stored_records(casebook)[len(before) :]
    # X's note as a valid envelope whose payload lacks its time: it can never be applied.
    poison = without_field(after[0], "at")
    assert dict(poison.headers)["ce_subject"] == str(x).encode()

    stop = threading.Event()
    service = SlaService(clean_database, settings)
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        send(bootstrap, topic, before)
        assert wait_for(lambda: sla_case(clean_database, x) == (x_version - 1, None, "running"), 30)
        send(bootstrap, topic, [poison, *after[1:]])

        # Y keeps flowing; X is parked on its note with the two later events held back.
        assert wait_for(lambda: (sla_case(clean_database, y) or ())[2:] == ("running",), 30)
        held = "SELECT count(*) FROM casebook_consumer_parked_events WHERE subject = %s"
        assert wait_for(lambda: query(clean_database, held, str(x)) == [(2,)], 30)
        [(ce_id, error, resolution)] = query(
            clean_database,
            "SELECT ce_id, error, resolution FROM casebook_consumer_dead_letters"
            " WHERE consumer_group = %s AND subject = %s",
            GROUP,
            str(x),
        )
        assert (ce_id, resolution) == (f"{x}:{x_version}", None)
        assert "bad payload" in error
        assert sla_case(clean_database, x) == (x_version - 1, None, "running")
        assert query(
            clean_database,
            "SELECT count(*) FROM casebook_consumer_parked WHERE subject != %s",
            str(x),
        ) == [(0,)]

        dead_letters = consume_all(bootstrap, f"{settings.topic_prefix}.dead-letters.v1")
        [dead] = [headers(r) for r in dead_letters]
        assert (dead["ce_id"], dead["dlq_group"], dead["dlq_error"]) == (ce_id, GROUP, error)

        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        monkeypatch.setenv("CASEBOOK_TOPIC_PREFIX", settings.topic_prefix)
        replayed = cli("dlq", "replay", str(x), "--group", GROUP, "--skip", db=clean_database)
        assert replayed.code == 0, replayed.stderr
        assert "2 event(s) applied" in replayed.stdout

        # The held-back response met the clock and the agent is known; nothing is parked.
        assert sla_case(clean_database, x) == (x_version + 2, "bob", "met")
        assert query(clean_database, "SELECT count(*) FROM casebook_consumer_parked") == [(0,)]
        # X's next event goes through the live consumer again.
        casebook.execute(c.AddNote(x, "done", NoteVisibility.INTERNAL), as_agent())
        send(bootstrap, topic, stored_records(casebook)[-1:])
        assert wait_for(lambda: sla_case(clean_database, x) == (x_version + 3, "bob", "met"), 30)
    finally:
        stop.set()
        thread.join(timeout=40)
    assert not thread.is_alive(), "the SLA tracker did not stop"
