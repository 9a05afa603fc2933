"""The write side with the relay, the SLA tracker and the audit trail on threads, as in
production; writers that keep it busy; and what the long scenarios check of it: caught up,
rebuilt, its audit log intact."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.rebuild import Outcome, Rebuild, Source
from domain.values import Severity
from entrypoints.audit_service import AuditService
from entrypoints.broker import Broker
from entrypoints.rebuilds import store_source, tables_of
from entrypoints.sla_service import SlaService
from projections.audit.verify import verify_log
from projections.registry import build
from relay.relay import Relay
from tests.integration.relay_support import RunningRelay, wait_for
from tests.integration.workload_support import projected_versions, query, store_versions
from tests.integration.write_side import as_agent, open_request

CAUGHT_UP_S = 90


@dataclass
class System:
    """What a test holds of a running system: its write side, database and settings."""

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
