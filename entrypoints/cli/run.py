"""`casebook run` (what `make run` calls): the whole system on this machine, demo included."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from api.keys import KeyRole
from api.part_reports import PartReporter
from casebook.settings import Settings, get_settings
from entrypoints.audit_service import audit_beside_api
from entrypoints.background import in_background
from entrypoints.cli.db import command_database
from entrypoints.cli.relay import relay_beside_api
from entrypoints.cli.serve import serve_api, signals_stop_once, write_side
from entrypoints.logging import configure_logging
from entrypoints.notifier_service import NotifierService
from entrypoints.sla_service import sla_beside_api
from messaging.kafka_clients import check_brokers

log = structlog.get_logger("entrypoints.cli")


@contextmanager
def kafka(settings: Settings) -> Iterator[Settings]:
    """The settings with the configured Kafka, checked, or a local tansu broker for as long
    as casebook runs (its bootstrap servers and kind filled in)."""
    if settings.kafka_bootstrap_servers is not None:
        check_brokers(settings, settings.kafka_bootstrap_servers)
        yield settings
        return
    from entrypoints.broker import embedded_broker

    with embedded_broker() as broker:
        yield settings.model_copy(
            update={
                "kafka_bootstrap_servers": broker.bootstrap_servers,
                "kafka_broker_kind": "tansu",
            }
        )


def brokers_of(settings: Settings) -> str:
    """The bootstrap servers of settings that `kafka` filled in."""
    assert settings.kafka_bootstrap_servers is not None
    return settings.kafka_bootstrap_servers


def run_command() -> None:
    """Start the database, migrate, seed a demo organisation, print demo keys, serve the API."""
    from entrypoints.demo import DEMO_ADMIN, seed  # written alongside the write side; imported late

    settings = get_settings()
    configure_logging(settings)
    stopping: list[float] = []  # when the stop signal arrived
    # Stopped in reverse: the background parts together (they still need the broker
    # and the database), then the broker, the write side, the database.
    with (
        signals_stop_once(),
        command_database(settings, migrate=True) as db,
        write_side(db, settings) as (cb, keys),
        kafka(settings) as with_kafka,
        in_background(
            {
                "casebook-relay": relay_beside_api(
                    cb, db, with_kafka, bootstrap := brokers_of(with_kafka)
                ),
                "casebook-sla": sla_beside_api(db, with_kafka, bootstrap).run,
                "casebook-audit": audit_beside_api(db, with_kafka, bootstrap).run,
                "casebook-notifier": NotifierService(db, settings).run,
                "casebook-part-reports": PartReporter(db.url, settings.part_unhealthy_seconds).run,
            }
        ) as background,
    ):
        demo = seed(cb, keys)
        # Fresh tokens every run (they are shown only once); stable principal ids, so the
        # demo agent's assignments and notes are still theirs after a restart.
        tokens = {
            role: keys.create(role, label="demo", principal_id=f"demo-{role.value}").token
            for role in KeyRole
        }
        base = f"http://{settings.api_host}:{settings.api_port}"
        lines = [
            "",
            f"casebook is starting on {base}  (database: {db.describe()})",
            f"  Kafka:     {bootstrap}  topics {settings.topic_prefix}.case-events.v1, "
            f"{settings.topic_prefix}.sla-events.v1",
            "  SLA:       tracker running (consumer group sla); GET /queue for the agent queue",
            "  audit:     trail running (consumer group audit); casebook audit --help",
            "  notifier:  delivering survey invitations; casebook notifications list",
            f"  API docs:  {base}/docs",
            f"  demo:      {demo}",
            "  demo API keys (send as 'Authorization: Bearer <key>'):",
            *(f"    {role.value:<10} {token}" for role, token in tokens.items()),
            f"  the portal key acts for a customer admin: add 'Casebook-On-Behalf-Of: "
            f"{DEMO_ADMIN}'",
            "  Ctrl-C stops the API, the relay, the SLA tracker, the audit trail, the notifier, "
            "the broker and the database.",
            "",
        ]
        print("\n".join(lines), flush=True)

        def stop_background() -> None:
            stopping.append(time.monotonic())
            background.stop()

        serve_api(
            cb, keys, db, settings, settings.api_host, settings.api_port, on_stop=stop_background
        )
    if stopping:
        log.info("casebook.stopped", elapsed_ms=round((time.monotonic() - stopping[0]) * 1000))
    print("casebook stopped", file=sys.stderr)
