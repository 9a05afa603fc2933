"""Acceptance of blue/green rebuilds on a running system, against real PostgreSQL and tansu.

Everything runs as in production, on threads: the write side, the relay, the SLA tracker
(consumer, timer, outbox publisher) and the audit trail (consumer, checkpointer, outbox
publisher). A rebuild of each projection, from Kafka or from the store, equals the tables
it replaces after a 10,000-event run; rebuilt while commands keep arriving, the live
projections lose nothing, carry on after the switch-over, and equal a later rebuild from
scratch.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.rebuild import Outcome, Rebuild, Source
from domain.values import Severity
from entrypoints.audit_service import AuditService
from entrypoints.broker import Broker
from entrypoints.rebuilds import compare, store_source, tables_of
from entrypoints.sla_service import SlaService
from projections.audit.verify import verify_log
from projections.registry import build
from relay.relay import Relay
from tests.integration.relay_support import RunningRelay, stored_ids, wait_for
from tests.integration.test_sla_acceptance import (
    projected_versions,
    query,
    store_cases,
    store_versions,
)
from tests.integration.write_side import as_agent, open_request
from tests.kafka import ON_BOTH_BROKERS

# Long scenarios: the default server only (the rebuild's SQL runs on both in
# test_projection_rebuild).
pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]
CAUGHT_UP_S = 90


@dataclass
class System:
    casebook: Casebook
    database: Database
    settings: Settings


@contextmanager
def running_system(database: Database, broker: Broker) -> Iterator[System]:
    """The write side with the relay, the SLA tracker and the audit trail running."""
    settings = Settings(
        database_url=database.url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=f"rb{uuid.uuid4().hex[:10]}",
        topic_partitions=3,
        consumer_session_timeout_ms=2000,
        audit_checkpoint_seconds=1.0,
    )
    casebook = Casebook.connect(database, settings)
    relay = RunningRelay(
        Relay(casebook.store, database, settings, bootstrap_servers=broker.bootstrap_servers)
    )
    stop = threading.Event()
    services: list[SlaService | AuditService] = [
        SlaService(database, settings),
        AuditService(database, settings, signing_key=Ed25519PrivateKey.generate()),
    ]
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in services]
    for thread in threads:
        thread.start()
    try:
        yield System(casebook, database, settings)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=40)
        relay.close()
        casebook.close()
    assert not any(thread.is_alive() for thread in threads), "a service did not stop"


def count(database: Database, sql: str, *params: Any) -> int:
    return int(query(database, sql, *params)[0][0])


def caught_up(database: Database, organisation_id: uuid.UUID) -> bool:
    """Every stored case event is in the SLA projection, every SLA event published, and
    the audit log holds one entry per stored event and per SLA event."""
    if projected_versions(database) != store_versions(database, organisation_id):
        return False
    if count(database, "SELECT count(*) FROM casebook_sla_outbox WHERE published_at IS NULL"):
        return False
    stored = count(database, "SELECT count(*) FROM casebook_events")
    sla_events = count(database, "SELECT count(*) FROM casebook_sla_outbox")
    audited = query(
        database,
        "SELECT count(*) FILTER (WHERE stream <> 'sla'), count(*) FILTER (WHERE stream = 'sla')"
        " FROM casebook_audit_entries",
    )[0]
    return audited == (stored, sla_events)


def wait_until_caught_up(
    system: System, organisation_id: uuid.UUID, timeout: float = CAUGHT_UP_S
) -> None:
    assert wait_for(lambda: caught_up(system.database, organisation_id), timeout, every=0.25), (
        "the live consumers did not catch up"
    )


def rebuild(system: System, name: str, source: Source) -> Outcome:
    db, settings = system.database, system.settings
    return Rebuild(
        db,
        settings,
        build(name, settings),
        tables_of(name, db),
        source=source,
        store=store_source(name, db, settings) if source == "store" else None,
    ).run()


def assert_log_intact_and_nothing_dead(database: Database) -> None:
    with psycopg.connect(database.url) as conn:
        verification = verify_log(conn)
    assert verification.intact, verification.breaks[:3]
    assert count(database, "SELECT count(*) FROM casebook_consumer_dead_letters") == 0
    assert count(database, "SELECT count(*) FROM casebook_consumer_parked") == 0


def test_rebuilds_of_a_10000_event_history_equal_the_tables_they_replace(
    clean_database: Database, own_broker: Broker
) -> None:
    with running_system(clean_database, own_broker) as system:
        organisation_id = store_cases(system.casebook, cases=500, events_per_case=20)
        assert count(clean_database, "SELECT count(*) FROM casebook_events") >= 10_000
        wait_until_caught_up(system, organisation_id)
        sla_events = count(clean_database, "SELECT count(*) FROM casebook_sla_outbox")
        assert sla_events >= 500

        runs: tuple[tuple[str, Source], ...] = (
            ("sla", "kafka"),
            ("audit", "kafka"),
            ("sla", "store"),
        )
        for name, source in runs:
            outcome = rebuild(system, name, source)
            assert outcome.dead_letters == 0
            assert outcome.events >= 10_000, (name, source, outcome)
            assert compare(clean_database, name, outcome.archive) == [], (name, source)

        assert_log_intact_and_nothing_dead(clean_database)
        # Still equal to the history after the switch-overs: nothing lost or added.
        assert caught_up(clean_database, organisation_id)


class Writer:
    """A thread that keeps opening, assessing and answering cases until stopped."""

    def __init__(
        self, casebook: Casebook, organisation_id: uuid.UUID, pause_s: float = 0.0
    ) -> None:
        self.casebook, self.organisation_id = casebook, organisation_id
        self._pause_s = pause_s
        self.opened: list[uuid.UUID] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                index = len(self.opened)
                case_id = open_request(self.casebook, self.organisation_id)
                self.casebook.execute(
                    c.AssignSeverity(case_id, (Severity.B, Severity.C)[index % 2]), as_agent()
                )
                if index % 2 == 0:
                    self.casebook.execute(c.Respond(case_id, "Looking into it"), as_agent())
                self.opened.append(case_id)
                self._stop.wait(self._pause_s)
        except BaseException as error:
            self.error = error
            raise

    def wait_for_more(self, cases: int) -> None:
        """Return once `cases` more cases were opened from now on."""
        target = len(self.opened) + cases
        assert wait_for(lambda: len(self.opened) >= target or self.error is not None, 30)
        assert self.error is None, self.error

    def stop(self) -> list[uuid.UUID]:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive() and self.error is None, self.error
        return self.opened


def test_rebuilds_while_commands_keep_arriving_lose_nothing_and_the_consumers_carry_on(
    clean_database: Database, own_broker: Broker
) -> None:
    with running_system(clean_database, own_broker) as system:
        organisation_id = store_cases(system.casebook, cases=60, events_per_case=15)
        wait_until_caught_up(system, organisation_id)

        writer = Writer(system.casebook, organisation_id)
        switched: dict[str, Outcome] = {}
        try:
            writer.wait_for_more(5)
            # Both ways of switching over: reaching the live offsets on Kafka, and
            # finishing from the store under the live group's lock.
            sources: tuple[Source, ...] = ("kafka", "store")
            for source in sources:
                for name in ("sla", "audit"):
                    during = len(writer.opened)
                    switched[name] = rebuild(system, name, source)
                    assert switched[name].dead_letters == 0
                    assert len(writer.opened) > during, "no command arrived during the rebuild"
            after_switch = len(writer.opened)
            writer.wait_for_more(10)
        finally:
            opened = writer.stop()
        issued_after_switch = opened[after_switch:]
        assert issued_after_switch

        wait_until_caught_up(system, organisation_id)
        # Nothing lost: every stored case at its stored version, one audit entry per stored
        # event and per SLA event, and the cases opened after the switch-overs among them.
        projected = projected_versions(clean_database)
        assert projected == store_versions(clean_database, organisation_id)
        assert {str(case_id) for case_id in issued_after_switch} <= set(projected)
        audited = query(clean_database, "SELECT stream, event_id FROM casebook_audit_entries")
        outbox = query(clean_database, "SELECT event_id FROM casebook_sla_outbox")
        assert sorted(e for s, e in audited if s != "sla") == sorted(stored_ids(clean_database))
        assert sorted(e for s, e in audited if s == "sla") == sorted(e for (e,) in outbox)
        assert_log_intact_and_nothing_dead(clean_database)

        # The live tables equal a rebuild from scratch done now, from the store: the live
        # ones (the first rebuild's, carried on by the live consumers) go to its archive.
        for name in ("sla", "audit"):
            later = rebuild(system, name, "store")
            assert later.archive != switched[name].archive
            assert compare(clean_database, name, later.archive) == [], name
        assert_log_intact_and_nothing_dead(clean_database)
