"""The whole pipeline on threads behind the HTTP API: the API over a Casebook on
PostgreSQL, the relay, the SLA tracker and, on request, the audit trail; commands sent
through it and reads repeated until they show what the pipeline did."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from casebook.database import Database
from casebook.settings import Settings
from domain.values import Role
from entrypoints.audit_service import AuditService
from entrypoints.broker import Broker
from entrypoints.sla_service import SlaService
from relay.relay import Relay
from tests.integration.api_support import Api, running_api
from tests.integration.relay_support import RunningRelay, wait_for


@contextmanager
def whole_system(
    database: Database,
    broker: Broker,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> Iterator[tuple[Api, TestClient, Settings]]:
    """API, relay and SLA tracker on `database` and `broker`, under a fresh topic prefix
    (the write side on `clock`, the wall clock by default)."""
    settings = Settings(
        database_url=database.url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=3,
        **overrides,
    )
    with (
        running_api(database, settings=settings, clock=clock) as api,
        TestClient(api.app) as client,
    ):
        relay = RunningRelay(
            Relay(
                api.casebook.store, database, settings, bootstrap_servers=broker.bootstrap_servers
            )
        )
        sla = SlaService(database, settings)
        stop = threading.Event()
        thread = threading.Thread(target=sla.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield api, client, settings
        finally:
            stop.set()
            thread.join(timeout=40)
            relay.close()
            assert not thread.is_alive(), "the SLA tracker did not stop"


def command(client: TestClient, api: Api, path: str, body: dict[str, Any]) -> None:
    """POST `body` to `path` as an agent; it must be accepted."""
    response = client.post(path, json=body, headers=api.as_(Role.AGENT))
    assert response.status_code == 200, response.text


def until(read: Callable[[], Any], holds: Callable[[Any], bool], timeout: float = 20) -> Any:
    """Read until `holds(value)`; the last value read (the assertion shows it on failure)."""
    box: list[Any] = [None]

    def check() -> bool:
        box[0] = read()
        return holds(box[0])

    wait_for(check, timeout=timeout, every=0.1)
    return box[0]


@contextmanager
def with_audit(database: Database, settings: Settings) -> Iterator[None]:
    """The audit trail (consumer, checkpointer, outbox publisher) on a thread for the block."""
    audit = AuditService(database, settings)
    stop = threading.Event()
    thread = threading.Thread(target=audit.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=40)
