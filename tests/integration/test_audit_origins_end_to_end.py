"""From an HTTP request to an audit entry naming its API key, client address and request id:
the API (over a real socket), the relay, tansu and the audit consumer; rebuilds agree."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from casebook.database import Database
from consumers.rebuild import Rebuild
from domain.values import Role
from entrypoints.broker import Broker
from entrypoints.rebuilds import compare, store_source, tables_of
from projections.audit.verify import verify_log
from projections.registry import build
from tests.integration.api_support import Api, open_case, register_acme, serving
from tests.integration.pipeline_support import until, whole_system, with_audit
from tests.integration.sla_support import rows
from tests.kafka import ON_BOTH_BROKERS

# The whole pipeline on the default PostgreSQL (the storage layers run on both servers).
pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]


def key_id(api: Api, role: Role) -> str:
    [key] = [k for k in api.keys.list() if k.principal_id == api.principals[role]]
    return key.key_id


def test_an_api_command_is_audited_with_its_key_address_and_request_id_and_rebuilds_agree(
    clean_database: Database, kafka_broker: Broker
) -> None:
    with (
        whole_system(clean_database, kafka_broker) as (api, _, settings),
        with_audit(clean_database, settings),
        serving(api.app) as url,
        httpx.Client(base_url=url) as client,
    ):
        case_id = open_case(client, api, register_acme(client, api))
        assessed = client.post(
            f"/cases/{case_id}/severity",
            json={"severity": "B"},
            headers=api.as_(Role.AGENT, **{"X-Request-ID": "ticket-4711.assess"}),
        )
        assert assessed.status_code == 200, assessed.text
        assert assessed.headers["X-Request-ID"] == "ticket-4711.assess"

        def case_entries() -> list[tuple[object, ...]]:
            return rows(
                clean_database,
                "SELECT seq, event_type, api_key_id, client_address, request_id "
                "FROM casebook_audit_entries WHERE subject = %s AND stream = 'case' "
                "ORDER BY seq",
                case_id,
            )

        found = until(case_entries, lambda entries: len(entries) == 2)
        agent = key_id(api, Role.AGENT)
        assert found[1] == (
            2,
            "casebook.case.severity_assigned.v1",
            agent,
            "127.0.0.1",
            "ticket-4711.assess",
        )
        assert found[0][2:4] == (agent, "127.0.0.1") and found[0][4]  # its own request id

        # Auditors read it in the case's timeline.
        timeline = client.get(
            f"/audit/cases/{case_id}/timeline", headers=api.as_(Role.AUDITOR)
        ).json()
        [assessment] = [e for e in timeline["entries"] if e["seq"] == 2 and e["stream"] == "case"]
        assert (
            assessment["api_key_id"],
            assessment["client_address"],
            assessment["request_id"],
        ) == (agent, "127.0.0.1", "ticket-4711.assess")
        with psycopg.connect(clean_database.url) as conn:
            assert verify_log(conn).intact

        # Wait for the SLA tracker's entries too: the store rebuild reads its outbox.
        def sla_audited() -> bool:
            [(outbox, audited)] = rows(
                clean_database,
                "SELECT (SELECT count(*) FROM casebook_sla_outbox), (SELECT count(*) FROM "
                "casebook_audit_entries WHERE stream = 'sla')",
            )
            return bool(0 < outbox == audited)

        assert until(sla_audited, bool)
        for source in ("store", "kafka"):
            outcome = Rebuild(
                clean_database,
                settings,
                build("audit", settings),
                tables_of("audit", clean_database),
                source=source,  # type: ignore[arg-type]
                store=store_source("audit", clean_database, settings),
            ).run()
            # The rebuilt log names the same origins: nothing differs from the live one.
            assert compare(clean_database, "audit", outcome.archive) == [], source
            assert case_entries() == found
        with psycopg.connect(clean_database.url) as conn:
            assert verify_log(conn).intact
