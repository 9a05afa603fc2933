"""Blue/green rebuilds of the SLA and audit projections while the live system runs."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from casebook.database import Database
from casebook.settings import Settings
from consumers.rebuild import Rebuild
from domain.values import Role
from entrypoints.broker import Broker
from entrypoints.rebuilds import compare, store_source, tables_of
from projections.audit.checkpointer import checkpoint_now
from projections.audit.verify import verify_log
from projections.registry import build
from tests.integration.api_support import Api, open_case, register_acme
from tests.integration.pipeline_support import command, until, whole_system, with_audit
from tests.integration.sla_support import rows
from tests.kafka import ON_BOTH_BROKERS

# The whole pipeline (API, relay, broker, consumers) over the same SQL on any PostgreSQL;
# the storage layers are proven on both servers, so these run on the default server.
pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]


def work_cases(client: TestClient, api: Api, organisation: str, count: int) -> list[str]:
    cases = []
    for n in range(count):
        case_id = open_case(client, api, organisation)
        command(client, api, f"/cases/{case_id}/severity", {"severity": "BC"[n % 2]})
        if n % 3 == 0:
            command(client, api, f"/cases/{case_id}/responses", {"message_summary": "On it"})
        cases.append(case_id)
    return cases


def caught_up(database: Database, cases: list[str]) -> bool:
    """Both consumers have applied everything the cases did (versions and entries)."""
    [(tracked,)] = rows(
        database, "SELECT count(*) FROM casebook_sla_cases WHERE case_id = ANY(%s::uuid[])", cases
    )
    [(stored,)] = rows(database, "SELECT count(*) FROM casebook_events")
    [(audited,)] = rows(
        database, "SELECT count(*) FROM casebook_audit_entries WHERE stream <> 'sla'"
    )
    return tracked == len(cases) and audited == stored


def rebuild(database: Database, settings: Settings, name: str, source: str) -> Any:
    return Rebuild(
        database,
        settings,
        build(name, settings),
        tables_of(name, database),
        source=source,  # type: ignore[arg-type]
        store=store_source(name, database, settings) if source == "store" else None,
    ).run()


@pytest.mark.parametrize("source", ["kafka", "store"])
def test_a_rebuild_equals_the_live_projection_and_the_live_consumer_carries_on(
    clean_database: Database, kafka_broker: Broker, source: str
) -> None:
    with (
        whole_system(clean_database, kafka_broker) as (api, client, settings),
        with_audit(clean_database, settings),
    ):
        organisation = register_acme(client, api)
        cases = work_cases(client, api, organisation, 12)
        # Both consumer groups first join on the broker: on a loaded machine tansu has
        # taken over 20 s to assign a second group its partitions.
        assert until(lambda: caught_up(clean_database, cases), bool, timeout=90)
        # A signed checkpoint goes to the archive with the old log; it is no difference.
        with psycopg.connect(clean_database.url, autocommit=True) as conn:
            assert checkpoint_now(conn, Ed25519PrivateKey.generate())
        for name in ("sla", "audit"):
            outcome = rebuild(clean_database, settings, name, source)
            assert outcome.events > 0
            # Nothing changed meanwhile: the rebuilt tables equal the replaced ones.
            assert compare(clean_database, name, outcome.archive) == []
        # The live consumers go on, now writing into the rebuilt tables.
        later = work_cases(client, api, organisation, 2)
        assert until(lambda: caught_up(clean_database, cases + later), bool, timeout=90)
        queue = client.get("/queue", headers=api.as_(Role.AGENT)).json()["items"]
        assert set(cases + later) <= {item["case_id"] for item in queue}
        with psycopg.connect(clean_database.url) as conn:
            assert verify_log(conn).intact
        [(dead,)] = rows(clean_database, "SELECT count(*) FROM casebook_consumer_dead_letters")
        assert dead == 0


def test_the_rebuild_command_reports_progress_switches_over_and_compares(
    clean_database: Database, cli: Any
) -> None:
    from casebook import commands as c
    from casebook.application import Casebook
    from domain.values import Severity
    from tests.integration.sla_support import project, stored_envelopes
    from tests.integration.write_side import as_agent, open_request, register_organisation

    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    organisation = register_organisation(casebook)
    for _ in range(3):
        casebook.execute(
            c.AssignSeverity(open_request(casebook, organisation), Severity.C), as_agent()
        )
    project(clean_database, stored_envelopes(casebook))
    casebook.close()

    result = cli("projections", "rebuild", "sla", "--from", "store", db=clean_database)
    assert result.code == 0, result.stderr
    assert "rebuilt 7/7 events" in result.stderr
    assert "the live tables equal those in archive_sla_" in result.stdout
    archive = result.stdout.split("schema ")[1].split()[0].rstrip(";")
    assert cli("projections", "compare", "sla", "--with", archive, db=clean_database).code == 0
    assert cli("projections", "drop", archive, db=clean_database).code == 0
    refused = cli("projections", "drop", "public", db=clean_database)
    assert refused.code == 2 and "is not a rebuild's schema" in refused.stderr
