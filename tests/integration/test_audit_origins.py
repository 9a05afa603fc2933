"""Audit entries name where each API command came from, under their hashes, in bundles too."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.envelope import Envelope, decode
from domain.values import Severity
from entrypoints.rebuilds import CaseEventsFromStore
from projections.audit.bundle import BundleInvalid, verify_bundle
from projections.audit.bundle_signature import signature_json
from projections.audit.checkpointer import checkpoint_now
from projections.audit.evidence import EvidenceRequest, export_bundle
from projections.audit.projection import AuditProjection
from projections.audit.queries import timeline
from projections.audit.verify import verify_case
from tests.integration.conftest import ON_BOTH_SERVERS, CliRunner
from tests.integration.sla_support import rows
from tests.integration.write_side import AGENT, open_request, register_organisation

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

FROM_API = c.Origin(api_key_id="5b1e9c", client_address="10.1.2.3", request_id="req-1")
ORIGIN_COLUMNS = ("api_key_id", "client_address", "request_id")


@dataclass(frozen=True)
class Case:
    database: Database
    case_id: UUID


def envelopes(database: Database) -> list[Envelope]:
    """Every stored event as the audit consumer decodes it, origin headers included."""
    source = CaseEventsFromStore(database, Settings(database_url=database.url))
    return [
        decode(raw.topic, 0, raw.offset, raw.headers, raw.value)
        for batch in source.batches({})
        for raw in batch
    ]


@pytest.fixture
def case(clean_database: Database) -> Iterator[Case]:
    """Opened from the command line (no origin), then assessed and escalated through the
    API (with one); every event audited."""
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    try:
        case_id = open_request(casebook, register_organisation(casebook))
        from_api = c.CommandContext(AGENT, origin=FROM_API)
        casebook.execute(c.AssignSeverity(case_id, Severity.B), from_api)
        casebook.execute(c.EscalateSeverity(case_id, Severity.A, "Site down"), from_api)
    finally:
        casebook.close()
    with psycopg.connect(clean_database.url) as conn, conn.transaction():
        AuditProjection().apply(conn, envelopes(clean_database))
    yield Case(clean_database, case_id)


def origin_by_seq(case: Case) -> dict[int, tuple[Any, ...]]:
    found = rows(
        case.database,
        "SELECT seq, api_key_id, client_address, request_id FROM casebook_audit_entries "
        "WHERE subject = %s AND stream = 'case' ORDER BY seq",
        case.case_id,
    )
    return {seq: tuple(origin) for seq, *origin in found}


def verified(case: Case) -> list[str]:
    with psycopg.connect(case.database.url) as conn:
        return [b.describe() for b in verify_case(conn, str(case.case_id)).breaks]


def test_entries_of_api_commands_name_key_address_and_request_and_the_chain_verifies(
    case: Case,
) -> None:
    assert origin_by_seq(case) == {
        1: (None, None, None),  # opened from the command line: no origin, still verifies
        2: ("5b1e9c", "10.1.2.3", "req-1"),
        3: ("5b1e9c", "10.1.2.3", "req-1"),
    }
    assert verified(case) == []
    with psycopg.connect(case.database.url) as conn:
        entries = timeline(conn, str(case.case_id))
    assert [(e["seq"], e["client_address"]) for e in entries] == [
        (1, None),
        (2, "10.1.2.3"),
        (3, "10.1.2.3"),
    ]


@pytest.mark.parametrize("address", ["203.0.113.66", None])
def test_changing_or_erasing_the_recorded_address_is_detected(
    case: Case, address: str | None
) -> None:
    with psycopg.connect(case.database.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE casebook_audit_entries SET client_address = %s "
            "WHERE subject = %s AND stream = 'case' AND seq = 2",
            (address, case.case_id),
        )
    [found] = verified(case)
    assert f"case {case.case_id}: entry 2 " in found
    assert found.endswith("its content does not match its hash")


def test_adding_an_address_to_an_entry_without_origin_is_detected(case: Case) -> None:
    with psycopg.connect(case.database.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE casebook_audit_entries SET client_address = '10.1.2.3' "
            "WHERE subject = %s AND stream = 'case' AND seq = 1",
            (case.case_id,),
        )
    [found] = verified(case)
    assert "entry 1 " in found and found.endswith("its content does not match its hash")


KEY = Ed25519PrivateKey.generate()


def bundle_of(case: Case) -> bytes:
    with psycopg.connect(case.database.url, autocommit=True) as conn:
        checkpoint_now(conn, KEY)
        request = EvidenceRequest(case_id=str(case.case_id))
        return export_bundle(conn, request, now=datetime.now(UTC), key=KEY).data


def test_an_evidence_bundle_carries_the_origins_and_an_edited_address_fails_verification(
    case: Case,
) -> None:
    bundle = bundle_of(case)
    assert verify_bundle(bundle).entries >= 3
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        lines = archive.read("entries.jsonl").splitlines()
        manifest = json.loads(archive.read("manifest.json"))
    entries = [json.loads(line) for line in lines]
    [opened, assessed] = [e for e in entries if e["stream"] == "case" and e["seq"] in (1, 2)]
    assert not set(ORIGIN_COLUMNS) & opened.keys()  # no origin: not in the line at all
    assert [assessed[name] for name in ORIGIN_COLUMNS] == ["5b1e9c", "10.1.2.3", "req-1"]

    # The address changed, the manifest's digest of the file made to match and the
    # manifest signed again (as only the key's holder could): the entry's hash tells.
    index = entries.index(assessed)
    lines[index] = json.dumps(assessed | {"client_address": "203.0.113.66"}).encode()
    edited = b"\n".join(lines) + b"\n"
    digest = hashlib.sha256(edited).hexdigest()
    manifest["entries"] = manifest["entries"] | {"sha256": digest}
    out = io.BytesIO()
    manifest_bytes = json.dumps(manifest).encode()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("entries.jsonl", edited)
        archive.writestr("manifest.json", manifest_bytes)
        digest = hashlib.sha256(manifest_bytes).hexdigest()
        archive.writestr("signature.json", signature_json(digest, KEY))
    with pytest.raises(BundleInvalid, match=r"entry 2 .*its content does not match its hash"):
        verify_bundle(out.getvalue())


def test_the_command_line_timeline_shows_where_api_commands_came_from(
    case: Case, cli: CliRunner
) -> None:
    shown = cli("audit", "timeline", str(case.case_id), db=case.database)
    as_json = cli("audit", "timeline", str(case.case_id), "--json", db=case.database)

    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "from 10.1.2.3 (key 5b1e9c, request req-1)" in lines[1]
    assert " from " not in lines[0]
    entries = json.loads(as_json.stdout)["entries"]
    assert [(e["api_key_id"], e["client_address"], e["request_id"]) for e in entries] == [
        (None, None, None),
        ("5b1e9c", "10.1.2.3", "req-1"),
        ("5b1e9c", "10.1.2.3", "req-1"),
    ]
