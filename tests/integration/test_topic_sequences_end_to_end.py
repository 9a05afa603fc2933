"""An independent reader of the published topics finds every key's sequence 1, 2, ... with
no gap and no duplicate, after cases and a service incident went through the whole
pipeline: API, relay, SLA tracker with its timer, audit trail with its checkpoints, and
their outbox publishers."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casebook.database import Database
from casebook.policy_source import default_policy_text
from casebook.settings import Settings
from domain.values import Role
from entrypoints.audit_service import AuditService
from entrypoints.broker import Broker
from tests.integration.api_support import open_case, register_acme
from tests.integration.pipeline_support import command, until, whole_system
from tests.integration.sla_support import rows
from tests.integration.topic_support import consume_all
from tests.kafka import ON_BOTH_BROKERS

pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]

TOPICS = ("case-events.v1", "sla-events.v1", "audit-checkpoints.v1")


def fast_policy(tmp_path: Path) -> Path:
    """Severity B's first response due within 3 seconds: the timer marks it at risk, then
    breached, while the test runs."""
    policy = tmp_path / "fast.toml"
    policy.write_text(
        default_policy_text()
        .replace('version = "2025.1"', 'version = "fast-1"')
        .replace(
            'targets.B = { initial_response = { business_days = 1 }, calendar = "extended_daily" }',
            'targets.B = { initial_response = { minutes = 0.05 }, calendar = "continuous" }',
        ),
        encoding="utf-8",
    )
    return policy


@contextmanager
def signing_audit(database: Database, settings: Settings) -> Iterator[None]:
    """The audit trail with its checkpointer (a fresh signing key) on a thread."""
    audit = AuditService(database, settings, signing_key=Ed25519PrivateKey.generate())
    stop = threading.Event()
    thread = threading.Thread(target=audit.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=40)


def incident_lived_through(client: Any, api: Any, organisation: str) -> tuple[str, str]:
    """A supervisor declares, updates and closes a service incident; a request about the
    service it names is filed linked to it. The incident's id and the linked case's."""
    supervisor = api.as_(Role.SUPERVISOR)
    declared = client.post(
        "/service-incidents",
        json={"services": ["Exchange Online"], "summary": "Mail is delayed."},
        headers=supervisor,
    )
    assert declared.status_code == 201, declared.text
    incident = str(declared.json()["aggregate_id"])
    case_id = open_case(
        client, api, organisation, service="Exchange Online", incident_acknowledged=incident
    )
    for method, path, body in (
        ("PATCH", f"/service-incidents/{incident}", {"summary": "Mail is slow."}),
        ("POST", f"/service-incidents/{incident}/close", {}),
    ):
        response = client.request(method, path, json=body, headers=supervisor)
        assert response.status_code == 200, response.text
    return incident, case_id


def by_key(records: list[Any]) -> dict[bytes, list[dict[str, bytes]]]:
    """Each key's records' headers, in the order its partition holds them."""
    found: dict[bytes, list[dict[str, bytes]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        found[record.key].append(dict(record.headers))
    return found


def test_every_key_of_every_topic_is_numbered_one_by_one_without_gap_or_duplicate(
    clean_database: Database, kafka_broker: Broker, tmp_path: Path
) -> None:
    with (
        whole_system(
            clean_database,
            kafka_broker,
            policy_file=fast_policy(tmp_path),
            audit_checkpoint_seconds=0.2,
        ) as (api, client, settings),
        signing_audit(clean_database, settings),
    ):
        organisation = register_acme(client, api)
        breaching = [open_case(client, api, organisation) for _ in range(2)]
        worked = [open_case(client, api, organisation) for _ in range(3)]
        for case_id in breaching:
            command(client, api, f"/cases/{case_id}/severity", {"severity": "B"})
        incident, linked = incident_lived_through(client, api, organisation)
        for case_id in worked:
            command(client, api, f"/cases/{case_id}/severity", {"severity": "C"})
            command(client, api, f"/cases/{case_id}/responses", {"message_summary": "On it"})
            command(
                client,
                api,
                f"/cases/{case_id}/resolution",
                {"reason": "fixed", "resolution": "Restarted the service"},
            )

        def settled() -> tuple[Any, ...]:
            [found] = rows(
                clean_database,
                "SELECT "
                "(SELECT count(*) FROM casebook_sla_clock_history WHERE change = 'breached'), "
                "(SELECT count(*) FROM casebook_sla_outbox WHERE published_at IS NULL), "
                "(SELECT count(*) FROM casebook_events) "
                "+ (SELECT count(*) FROM casebook_sla_outbox) "
                "- (SELECT count(*) FROM casebook_audit_entries), "
                "(SELECT coalesce(sum(count), 0) FROM casebook_audit_checkpoints) "
                "- (SELECT count(*) FROM casebook_audit_entries), "
                "(SELECT count(*) FROM casebook_audit_checkpoint_outbox "
                "WHERE published_at IS NULL)",
            )
            return found

        # Both fast clocks breached; every SLA event published and audited; every entry
        # under a checkpoint, and every checkpoint published.
        assert until(settled, lambda s: s == (2, 0, 0, 0, 0), timeout=60) == (2, 0, 0, 0, 0)
        [(held,)] = rows(
            clean_database,
            "SELECT (SELECT count(*) FROM casebook_consumer_waiting) "
            "+ (SELECT count(*) FROM casebook_consumer_dead_letters)",
        )
        assert held == 0
        published = {
            topic: by_key(
                consume_all(kafka_broker.bootstrap_servers, f"{settings.topic_prefix}.{topic}")
            )
            for topic in TOPICS
        }

    assert {str(case_id).encode() for case_id in breaching + worked} <= set(
        published["sla-events.v1"]
    )
    assert published["audit-checkpoints.v1"].keys() == {b"audit-log"}
    for topic, keys in published.items():
        for key, records in keys.items():
            numbers = [int(r["ce_sequence"]) for r in records]
            ids = [r["ce_id"] for r in records]
            assert numbers == list(range(1, len(records) + 1)), (topic, key, numbers)
            assert len(set(ids)) == len(ids), (topic, key, ids)
    # A service incident's events are keyed by it like any aggregate's; the case linked to it
    # at its opening has the link right after the opening.
    incident_types = [r["ce_type"] for r in published["case-events.v1"][incident.encode()]]
    assert incident_types == [
        b"casebook.incident.declared.v1",
        b"casebook.incident.updated.v1",
        b"casebook.incident.closed.v1",
    ]
    opening = published["case-events.v1"][linked.encode()][:2]
    assert [(r["ce_sequence"], r["ce_type"]) for r in opening] == [
        (b"1", b"casebook.case.opened.v5"),
        (b"2", b"casebook.case.linked_to_incident.v1"),
    ]
    breached = [
        r
        for key in breaching
        for r in published["sla-events.v1"][str(key).encode()]
        if r["ce_type"] == b"casebook.sla.clock_breached.v1"
    ]
    assert len(breached) == 2
