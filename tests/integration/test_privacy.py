"""Personal data sealed under data keys, erased by destroying them (crypto-shredding)."""

from __future__ import annotations

import base64
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from casebook import commands as c
from casebook.database import Database
from casebook.personal_data import Erasure, erase
from domain.cases import NoteVisibility
from domain.values import ERASED, Role
from entrypoints.broker import Broker
from entrypoints.logging import configure_logging, reset_logging
from privacy.envelope import KeyUnusable
from projections.audit.bundle import verify_bundle
from projections.audit.verify import verify_case
from relay.cloudevents import topic_name
from tests.integration.api_support import ACME, Api, open_case
from tests.integration.conftest import CliRunner
from tests.integration.pipeline_support import command, until, whole_system, with_audit
from tests.integration.sla_support import rows
from tests.integration.topic_support import consume_all
from tests.integration.write_side import (
    ADMIN,
    as_agent,
    connected,
    open_request,
    register_organisation,
)
from tests.kafka import ON_BOTH_BROKERS
from tests.signing_key import new_signing_key_file

pytestmark = pytest.mark.integration

# What the subject typed and left: unique, so a byte scan finds any copy of it.
ZOFIA_PHONE = "+48 601 555 017"
ZOFIA_EMAIL = "zofia.kowalska@acme.example"
ZOFIA_TITLE = "Zofia Kowalska cannot reach her mailbox"
ZOFIA_NOTE = "Call Zofia back on her private line 601-555-017"
# The principal id "zofia" is no marker: ids are pseudonyms the audit keeps (docs/privacy.md).
MARKERS = ("Kowalska", "601 555 017", "601-555-017", "private line")


def every_table_text(database: Database) -> str:
    """Every row of every casebook table, as text (bytea as hex and as UTF-8 text)."""
    with psycopg.connect(database.url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename LIKE 'casebook%%'"
            )
        ]
        parts = [str(row[0]) for t in tables for row in conn.execute(f"SELECT t::text FROM {t} t")]
        states = conn.execute("SELECT state FROM casebook_events").fetchall()
    return "\n".join(parts) + "\n".join(bytes(s[0]).decode("utf-8", "replace") for s in states)


def found_in(text: str) -> list[str]:
    return [marker for marker in MARKERS if marker.lower() in text.lower()]


def test_personal_fields_are_sealed_in_the_event_store_and_read_back_in_clear(
    clean_database: Database,
) -> None:
    with connected(clean_database) as casebook:
        organisation = register_organisation(casebook)
        case_id = open_request(casebook, organisation)
        casebook.execute(
            c.AddNote(case_id, text=ZOFIA_NOTE, visibility=NoteVisibility.INTERNAL),
            as_agent(),
        )
        case = casebook.get_case(case_id)
        assert case.title == "Mail is down" and case.notes[0].text == ZOFIA_NOTE
    with psycopg.connect(clean_database.url) as conn:
        states = b"".join(bytes(r[0]) for r in conn.execute("SELECT state FROM casebook_events"))
        keys = conn.execute("SELECT count(*), count(subject) FROM casebook_data_keys").fetchone()
    assert b"Mail is down" not in states and b"Call Zofia" not in states
    assert b"Nobody receives mail" not in states and b"acme.example" not in states
    assert b'"_type_":"sealed"' in states
    assert keys == (2, 1)  # the organisation's own key and its requester ada's


def test_a_wrong_master_key_is_refused_by_name_not_read_as_erased(
    clean_database: Database, tmp_path: Path
) -> None:
    with connected(clean_database) as casebook:
        case_id = open_request(casebook, register_organisation(casebook))
    other = tmp_path / "other-master-key"
    other.write_text(base64.b64encode(os.urandom(32)).decode())
    with connected(clean_database, privacy_master_key_file=other) as casebook:
        with pytest.raises(Exception, match="master key") as raised:
            casebook.get_case(case_id)
        assert isinstance(raised.value, KeyUnusable) or isinstance(
            raised.value.__cause__, KeyUnusable
        )


def zofia_case(client: TestClient, api: Api, organisation: str) -> str:
    case_id = open_case(
        client,
        api,
        organisation,
        requester_id="zofia",
        title=ZOFIA_TITLE,
        description=f"Write to {ZOFIA_EMAIL} or call {ZOFIA_PHONE}.",
        contact_phone=ZOFIA_PHONE,
        contact_email=ZOFIA_EMAIL,
    )
    command(client, api, f"/cases/{case_id}/notes", {"text": ZOFIA_NOTE, "visibility": "internal"})
    command(client, api, f"/cases/{case_id}/severity", {"severity": "B"})
    return case_id


@ON_BOTH_BROKERS
def test_erasing_a_subject_leaves_their_fields_erased_everywhere_and_the_audit_intact(
    clean_database: Database,
    kafka_broker: Broker,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    cli: CliRunner,
) -> None:
    key = new_signing_key_file(tmp_path)
    system = whole_system(
        clean_database, kafka_broker, log_level="debug", audit_signing_key_file=key
    )
    with system as (api, client, settings):
        configure_logging(settings)
        try:
            with with_audit(clean_database, settings):
                organisation = register(client, api)
                zofia = zofia_case(client, api, organisation)
                ada = open_case(client, api, organisation)
                agent = api.as_(Role.AGENT)
                audited = until(
                    lambda: audit_entries(clean_database, zofia), lambda n: n >= 3, timeout=60
                )
                sla = f"/cases/{zofia}/sla"
                until(lambda: client.get(sla, headers=agent).text, lambda t: '"B"' in t, 60)
                before = what_is_read(client, api, zofia, at=None)
                assert before.case["title"] == ZOFIA_TITLE
                assert ZOFIA_NOTE in before.history and before.as_of["title"] == ZOFIA_TITLE

                erased = client.post(
                    "/privacy/erasures",
                    json={"subject": "zofia", "reason": "Erasure request DSR-2026-118"},
                    headers=api.as_(Role.ADMIN),
                )
                assert erased.status_code == 200, erased.text
                assert erased.json() | {"erasure_id": 0} == {
                    "erasure_id": 0,
                    "keys_destroyed": 1,
                    "cases": 1,
                    "recorded": 1,
                }
                until(lambda: audit_entries(clean_database, zofia), lambda n: n > audited, 60)

                after = what_is_read(client, api, zofia, at=before.case["opened_at"])
                assert after.case["title"] == ERASED and after.case["description"] == ERASED
                assert after.case["severity"] == "B" and after.case["status"] == "open"
                assert not found_in(after.history) and ERASED in after.history
                assert "Erasure request DSR-2026-118" in after.history
                assert after.as_of["title"] == ERASED, after.as_of
                assert verify_bundle(after.bundle).entries >= audited + 1
                assert not found_in(after.bundle_text)
                assert after.clocks == before.clocks  # the SLA figures stay
                # The other requester's case is untouched.
                assert client.get(f"/cases/{ada}", headers=agent).json()["title"] == (
                    "Mail is not delivered"
                )
            with psycopg.connect(clean_database.url) as conn:
                assert verify_case(conn, zofia).intact
        finally:
            logs = capsys.readouterr()
            reset_logging()
    verified = cli("audit", "verify", db=clean_database)
    assert verified.code == 0 and "intact" in verified.stdout, verified.stdout
    assert not found_in(every_table_text(clean_database))
    topic = consume_all(kafka_broker.bootstrap_servers, topic_name(settings.topic_prefix))
    published = b"".join((r.value or b"") + b"".join(v or b"" for _, v in r.headers) for r in topic)
    assert b"personal_data_erased" in published
    assert not found_in(published.decode("utf-8", "replace"))
    assert "write.batch" in logs.out + logs.err  # the logs were captured at debug level
    assert not found_in(logs.out + logs.err)


@dataclass(frozen=True)
class Reads:
    """What staff and auditors read of a case: its view, history, as-of state, evidence."""

    case: dict[str, Any]
    history: str
    as_of: dict[str, Any]
    clocks: list[dict[str, Any]]  # without the remaining time, which moves as it is read
    bundle: bytes
    bundle_text: str  # every file of the bundle, unzipped


def what_is_read(client: TestClient, api: Api, case_id: str, at: str | None) -> Reads:
    auditor = api.as_(Role.AUDITOR)
    case = client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT)).json()
    history = client.get(f"/cases/{case_id}/events", headers=auditor)
    as_of = client.get(
        f"/audit/cases/{case_id}/state", params={"at": at or case["opened_at"]}, headers=auditor
    )
    sla = client.get(f"/cases/{case_id}/sla", headers=api.as_(Role.AGENT))
    bundle = client.get(f"/audit/cases/{case_id}/evidence", headers=auditor)
    for response in (history, as_of, sla, bundle):
        assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        text = "\n".join(archive.read(name).decode() for name in archive.namelist())
    clocks = [
        {k: v for k, v in clock.items() if k != "remaining_business_seconds"}
        for clock in sla.json()["clocks"]
    ]
    return Reads(case, history.text, as_of.json()["state"], clocks, bundle.content, text)


def register(client: TestClient, api: Api) -> str:
    body = ACME | {"admins": ["ada", "zofia"]}
    response = client.post("/organisations", json=body, headers=api.as_(Role.ADMIN))
    assert response.status_code == 201, response.text
    return str(response.json()["aggregate_id"])


def audit_entries(database: Database, case_id: str) -> int:
    found = rows(
        database,
        "SELECT count(*) FROM casebook_audit_entries WHERE subject = %s AND stream = 'case'",
        case_id,
    )
    return int(found[0][0])


def test_the_command_line_erases_an_organisation_and_exports_a_subject(
    clean_database: Database, cli: CliRunner
) -> None:
    with connected(clean_database) as casebook:
        organisation = register_organisation(casebook)
        case_id = open_request(casebook, organisation)

    exported = cli("privacy", "export", "--subject", "ada", db=clean_database)
    assert exported.code == 0, exported.stderr
    assert '"title": "Mail is down"' in exported.stdout

    erased = cli(
        "privacy",
        "erase",
        "--organisation",
        str(organisation),
        "--reason",
        "Contract ended",
        db=clean_database,
    )
    assert erased.code == 0, erased.stderr
    assert (
        "2 data key(s) destroyed, 1 case(s) reached, 2 erasure event(s) recorded" in erased.stdout
    )

    with connected(clean_database) as casebook:
        case = casebook.get_case(case_id)
        acme = casebook.get_organisation(organisation)
        assert (case.title, case.contact_phone, case.caller_phone) == (ERASED, ERASED, ERASED)
        assert acme.phones == set() and acme.emails == set() and acme.name == "Acme"
        # Written after the erasure: a new key, readable.
        casebook.execute(
            c.AddNote(case_id, text="Customer called again", visibility=NoteVisibility.INTERNAL),
            as_agent(),
        )
        assert casebook.get_case(case_id).notes[-1].text == "Customer called again"
    exported = cli("privacy", "export", "--subject", "ada", db=clean_database)
    assert '"title": "[erased]"' in exported.stdout and "Mail is down" not in exported.stdout
    recorded = rows(
        clean_database,
        "SELECT erased_by, reason, keys_destroyed, cases, recorded, completed_at IS NOT NULL"
        " FROM casebook_erasures",
    )
    assert recorded[0][1:] == ("Contract ended", 2, 1, 2, True)
    assert str(recorded[0][0]).startswith("operator:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("erase", "--subject", "nobody", "--reason", "DSR-1"), "No case or data key"),
        (("erase", "--subject", "ada", "--reason", "  "), "Give the erasure's reason"),
        (("erase", "--reason", "DSR-1"), "give --organisation, --subject or both"),
        (("export", "--subject", "nobody"), "No case belongs to subject 'nobody'"),
    ],
)
def test_the_command_line_refuses_an_erasure_it_cannot_do_in_one_line(
    clean_database: Database, cli: CliRunner, args: tuple[str, ...], message: str
) -> None:
    result = cli("privacy", *args, db=clean_database)
    assert result.code != 0
    assert message in result.stderr
    assert rows(clean_database, "SELECT count(*) FROM casebook_erasures") == [(0,)]


def test_an_erasure_without_scope_or_reason_is_a_problem_naming_the_field(
    clean_api: Api, clean_client: TestClient
) -> None:
    api, client = clean_api, clean_client
    admin = api.as_(Role.ADMIN)
    no_reason = client.post("/privacy/erasures", json={"subject": "ada"}, headers=admin)
    assert no_reason.status_code == 422
    assert no_reason.headers["content-type"].startswith("application/problem+json")
    assert "reason" in no_reason.text
    no_scope = client.post("/privacy/erasures", json={"reason": "DSR-1"}, headers=admin)
    assert no_scope.status_code == 422 and "organisation_id, subject or both" in no_scope.text
    agent = client.post(
        "/privacy/erasures", json={"subject": "ada", "reason": "x"}, headers=api.as_(Role.AGENT)
    )
    assert agent.status_code == 403


def test_an_erasure_blanks_personal_fields_stored_in_clear_before_sealing_existed(
    clean_database: Database, cli: CliRunner
) -> None:
    with connected(clean_database) as casebook:
        casebook.store.mapper.keyring = None  # personal fields stored as before 0026
        case_id = open_request(casebook, register_organisation(casebook))
    assert "Mail is down" in every_table_text(clean_database)

    erased = cli("privacy", "erase", "--subject", "ada", "--reason", "DSR-9", db=clean_database)
    assert erased.code == 0, erased.stderr
    assert "0 data key(s) destroyed, 1 case(s) reached" in erased.stdout
    text = every_table_text(clean_database)
    assert "Mail is down" not in text and "Nobody receives mail" not in text
    with connected(clean_database) as casebook:
        assert casebook.get_case(case_id).title == ERASED


def test_a_writer_holding_an_erased_key_seals_its_next_write_under_a_live_one(
    clean_database: Database,
) -> None:
    with connected(clean_database) as writer, connected(clean_database) as eraser:
        organisation = register_organisation(writer)
        open_request(writer, organisation)  # the writer now holds ada's key
        report = erase(eraser, Erasure(None, "ada", "DSR-11"), ADMIN.actor)
        assert report.keys_destroyed == 1
        # A new case: no version conflict, only the erased key to notice.
        later = open_request(writer, organisation)
        assert eraser.get_case(later).title == "Mail is down"
    live = rows(clean_database, "SELECT count(*) FROM casebook_data_keys WHERE erased_at IS NULL")
    assert live == [(2,)]  # the organisation's and ada's new one
