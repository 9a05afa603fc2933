"""The audit service signs checkpoints as entries arrive and publishes them to Kafka."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaConsumer

from casebook.database import Database
from entrypoints.audit_service import AuditService
from entrypoints.broker import Broker
from projections.audit.checkpoint import Checkpoint, problem
from tests.integration.api_support import open_case, register_acme
from tests.integration.pipeline_support import until, whole_system
from tests.integration.sla_support import rows
from tests.kafka import ON_BOTH_BROKERS

# The whole pipeline (API, relay, broker, consumers) over the same SQL on any PostgreSQL;
# the storage layers are proven on both servers, so these run on the default server.
pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]


def test_signed_checkpoints_cover_the_log_and_reach_their_topic(
    clean_database: Database, kafka_broker: Broker
) -> None:
    key = Ed25519PrivateKey.generate()
    with whole_system(clean_database, kafka_broker, audit_checkpoint_seconds=0.2) as (
        api,
        client,
        settings,
    ):
        audit = AuditService(clean_database, settings, signing_key=key)
        stop = threading.Event()
        thread = threading.Thread(target=audit.run, args=(stop,), daemon=True)
        thread.start()
        try:
            organisation = register_acme(client, api)
            open_case(client, api, organisation)

            def coverage() -> tuple[int, int, int]:
                [found] = rows(
                    clean_database,
                    "SELECT (SELECT count(*) FROM casebook_audit_entries), "
                    "(SELECT coalesce(sum(count), 0) FROM casebook_audit_checkpoints), "
                    "(SELECT count(*) FROM casebook_audit_checkpoint_outbox "
                    "WHERE published_at IS NULL)",
                )
                return found

            # registered, opened, the clock started: every entry covered and published.
            assert until(coverage, lambda c: c[0] >= 3 and c[1] == c[0] and c[2] == 0)
        finally:
            stop.set()
            thread.join(timeout=40)
        topic = f"{settings.topic_prefix}.audit-checkpoints.v1"
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.bootstrap_servers,
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
        )
        records = list(consumer)
        consumer.close()
    assert records, f"nothing on {topic}"
    published = [Checkpoint.from_json(json.loads(r.value)) for r in records]
    assert [c.number for c in published] == list(range(1, len(published) + 1))
    assert all(problem(c, key.public_key()) is None for c in published)
    headers = dict(records[0].headers)
    assert headers["ce_type"] == b"casebook.audit.checkpoint_signed.v1"
    assert headers["ce_id"] == f"checkpoint:1:{published[0].digest[:16]}".encode()
