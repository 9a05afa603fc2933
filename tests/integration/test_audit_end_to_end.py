"""The audit trail fed from both topics: a case's own events and its SLA transitions."""

from __future__ import annotations

import threading

import psycopg
import pytest

from casebook.database import Database
from domain.values import Role
from entrypoints.audit_service import AuditService
from entrypoints.broker import Broker
from projections.audit.verify import verify_case
from tests.integration.api_support import open_case, register_acme
from tests.integration.pipeline_support import command, until, whole_system
from tests.integration.sla_support import rows
from tests.kafka import ON_BOTH_BROKERS

# The whole pipeline (API, relay, broker, consumers) over the same SQL on any PostgreSQL;
# the storage layers are proven on both servers, so these run on the default server.
pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]


def test_case_and_sla_events_form_two_verified_chains_of_the_case(
    clean_database: Database, kafka_broker: Broker
) -> None:
    with whole_system(clean_database, kafka_broker) as (api, client, settings):
        audit = AuditService(clean_database, settings)
        stop = threading.Event()
        thread = threading.Thread(target=audit.run, args=(stop,), daemon=True)
        thread.start()
        try:
            organisation = register_acme(client, api)
            case_id = open_case(client, api, organisation)
            command(client, api, f"/cases/{case_id}/severity", {"severity": "B"})
            command(client, api, f"/cases/{case_id}/responses", {"message_summary": "On it"})

            def streams() -> list[tuple[str, int]]:
                return rows(
                    clean_database,
                    "SELECT stream, count(*) FROM casebook_audit_entries WHERE subject = %s "
                    "GROUP BY stream ORDER BY stream",
                    case_id,
                )

            # opened, assessed, responded; the triage clock started at the opening, was
            # recomputed by the assessment, then met.
            assert until(streams, lambda found: found == [("case", 3), ("sla", 3)]) == [
                ("case", 3),
                ("sla", 3),
            ]
        finally:
            stop.set()
            thread.join(timeout=40)
        sla_outcomes = rows(
            clean_database,
            "SELECT outcome, actor_id FROM casebook_audit_entries "
            "WHERE subject = %s AND stream = 'sla' ORDER BY seq",
            case_id,
        )
        assert sla_outcomes == [
            ("clock started", "sla-tracker"),
            ("clock recomputed", "sla-tracker"),
            ("clock met", "sla-tracker"),
        ]
        with psycopg.connect(clean_database.url) as conn:
            assert verify_case(conn, case_id).intact
        assert rows(clean_database, "SELECT count(*) FROM casebook_consumer_dead_letters") == [(0,)]
        assert client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT)).status_code == 200
