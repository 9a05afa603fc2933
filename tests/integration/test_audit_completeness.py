"""Completeness against the store: `audit verify` and `projections check sla|audit` find
stored events a projection lacks, even when every hash chain still links."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from api.audit_views import VerificationView
from api.read_models import ReadModels
from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.envelope import Envelope, decode
from domain.values import Actor, Category, Channel, Role, Severity
from projections.audit.chain import GENESIS, entry_hash
from projections.audit.projection import ENTRY_COLUMNS, AuditProjection
from projections.sla.schema import SLA_TOPIC
from relay.outbox import outbox_record
from tests.integration.audit_support import live_a_case
from tests.integration.conftest import CliRunner
from tests.integration.sla_support import project, sla_projection, stored_envelopes
from tests.integration.write_side import as_agent, open_request, register_organisation

pytestmark = pytest.mark.integration


@pytest.fixture
def casebook(clean_database: Database) -> Iterator[Casebook]:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    yield casebook
    casebook.close()


def published(database: Database) -> None:
    """As if the relay and the SLA outbox had published everything stored so far."""
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO casebook_relay_positions (relay, position) SELECT 'case-events',"
            " max(notification_id) FROM casebook_events ON CONFLICT (relay)"
            " DO UPDATE SET position = EXCLUDED.position"
        )
        conn.execute("UPDATE casebook_sla_outbox SET published_at = now()")


def audit(database: Database, events: list[Envelope]) -> None:
    with psycopg.connect(database.url) as conn, conn.transaction():
        AuditProjection().apply(conn, events)


def sla_envelopes(database: Database) -> list[Envelope]:
    """The SLA outbox as the audit consumer decodes it from the SLA-events topic."""
    with psycopg.connect(database.url) as conn:
        rows = conn.execute(
            "SELECT id, event_id, type, subject, time, payload, sequence FROM casebook_sla_outbox "
            "ORDER BY id"
        ).fetchall()
    records = [outbox_record(row, "/test") for row in rows]
    return [decode(SLA_TOPIC, 0, n, r["headers"], r["value"]) for n, r in enumerate(records)]


def skip_entry(database: Database, case_id: UUID, seq: int, *, stream: str = "case") -> None:
    """Delete one entry and re-link the rest of its chain and its head, as a consumer that
    never received the event would have built it: the chain links, the entry is missing."""
    where = f"stream = '{stream}' AND subject = %s"
    with psycopg.connect(database.url) as conn, conn.transaction():
        conn.execute(
            f"DELETE FROM casebook_audit_entries WHERE {where} AND seq = %s", (case_id, seq)
        )
        entries = (
            conn.cursor(row_factory=dict_row)
            .execute(
                f"SELECT entry_id, {ENTRY_COLUMNS} FROM casebook_audit_entries WHERE {where}"
                " ORDER BY seq",
                (case_id,),
            )
            .fetchall()
        )
        previous = GENESIS
        for number, entry in enumerate(entries, start=1):
            entry |= {"seq": number, "prev_hash": previous}
            previous = entry_hash(entry)
            conn.execute(
                "UPDATE casebook_audit_entries SET seq = %s, prev_hash = %s, hash = %s"
                " WHERE entry_id = %s",
                (number, entry["prev_hash"], previous, entry["entry_id"]),
            )
        conn.execute(
            f"UPDATE casebook_audit_heads SET seq = %s, hash = %s WHERE {where}",
            (len(entries), previous, case_id),
        )


def test_a_complete_log_is_intact(cli: CliRunner, clean_database: Database) -> None:
    past = live_a_case(clean_database)
    published(clean_database)
    one = cli("audit", "verify", str(past.case_id), db=clean_database)
    assert (one.code, one.stdout) == (0, f"case {past.case_id}: 9 entries in 1 chain(s): intact\n")
    body = json.loads(cli("audit", "verify", "--json", db=clean_database).stdout)
    assert (body["intact"], body["unmodified"], body["complete"]) == (True, True, True)
    assert body["missing_entries"] == 0 and body["missing"] == []
    check = cli("projections", "check", "audit", db=clean_database)
    assert check.code == 0, check.stdout
    assert check.stdout.startswith("audit: complete")


def test_an_entry_skipped_mid_chain_is_reported_incomplete_not_modified(
    cli: CliRunner, clean_database: Database
) -> None:
    past = live_a_case(clean_database)
    published(clean_database)
    skip_entry(clean_database, past.case_id, 4)
    case = past.case_id
    line = (
        f"  case {case}: event {case}:4 (version 4, casebook.case.customer_unresponsive.v1)"
        " has no audit entry\n"
    )
    for args in ([str(case)], []):
        result = cli("audit", "verify", *args, db=clean_database)
        assert result.code == 1
        assert (
            "incomplete (1 stored event(s) without an audit entry in 1 chain(s))" in result.stdout
        )
        assert "modified" not in result.stdout  # every chain still links
        assert line in result.stdout
    body = json.loads(cli("audit", "verify", "--json", db=clean_database).stdout)
    assert (body["intact"], body["unmodified"], body["complete"]) == (False, True, False)
    assert body["breaks"] == [] and body["missing_entries"] == 1
    assert (body["missing"][0]["event_id"], body["missing"][0]["sequence"]) == (f"{case}:4", 4)
    check = cli("projections", "check", "audit", db=clean_database)
    assert check.code == 1 and line in check.stdout
    # The auditor routes read through the same read model.
    reads = ReadModels(clean_database, sla_projection().targets)
    try:
        view = VerificationView.of(reads.verify(str(case)))
    finally:
        reads.close()
    assert view.unmodified and view.complete is False
    assert [m.event_id for m in view.missing] == [f"{case}:4"]


def test_an_event_an_operator_skipped_is_missing_and_says_so(
    cli: CliRunner, clean_database: Database
) -> None:
    past = live_a_case(clean_database)
    published(clean_database)
    skip_entry(clean_database, past.case_id, 4)
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO casebook_consumer_dead_letters (consumer_group, subject, ce_id, topic,"
            ' partition, "offset", headers, error, attempts, resolution)'
            " VALUES ('audit', %s, %s, 'casebook.case-events.v1', 0, 3, '[]', 'bad', 1, 'skipped')",
            (str(past.case_id), f"{past.case_id}:4"),
        )
    result = cli("audit", "verify", str(past.case_id), db=clean_database)
    assert result.code == 1
    assert "has no audit entry; skipped by an operator (dead letter 1)\n" in result.stdout


def test_incident_events_are_audited_in_a_chain_of_their_own_and_counted_complete(
    cli: CliRunner, clean_database: Database, casebook: Casebook
) -> None:
    supervisor = c.CommandContext(Actor("sue", Role.SUPERVISOR, Channel.API))
    organisation = register_organisation(casebook)
    incident = casebook.execute(
        c.DeclareIncident(("Exchange Online",), (Category.BILLING,), "Mail is delayed."),
        supervisor,
    ).aggregate_id
    casebook.execute(c.UpdateIncident(incident, summary="Mail is slow."), supervisor)
    case_id = open_request(casebook, organisation)
    casebook.execute(c.LinkCaseToIncident(case_id, incident), as_agent())
    casebook.execute(c.CloseIncident(incident), supervisor)
    events = stored_envelopes(casebook)
    project(clean_database, events)
    audit(clean_database, events + sla_envelopes(clean_database))
    published(clean_database)

    with psycopg.connect(clean_database.url) as conn:
        chain = conn.execute(
            "SELECT seq, event_type, actor_id, organisation_id FROM casebook_audit_entries"
            " WHERE stream = 'incident' AND subject = %s ORDER BY seq",
            (incident,),
        ).fetchall()
    assert chain == [
        (1, "casebook.incident.declared.v1", "sue", None),
        (2, "casebook.incident.updated.v1", "sue", None),
        (3, "casebook.incident.closed.v1", "sue", None),
    ]
    verified = cli("audit", "verify", db=clean_database)
    assert verified.code == 0 and verified.stdout.endswith("intact\n"), verified.stdout
    check = cli("projections", "check", "audit", db=clean_database)
    assert check.code == 0 and check.stdout.startswith("audit: complete"), check.stdout

    skip_entry(clean_database, incident, 2, stream="incident")
    result = cli("projections", "check", "audit", db=clean_database)
    assert result.code == 1
    assert (
        f"  incident {incident}: event {incident}:2 (version 2, casebook.incident.updated.v1)"
        " has no audit entry\n"
    ) in result.stdout


def test_an_sla_event_without_its_entry_is_reported(
    cli: CliRunner, clean_database: Database, casebook: Casebook
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    casebook.execute(c.AssignSeverity(case_id, Severity.B), as_agent())
    casebook.execute(c.Respond(case_id, "On it"), as_agent())
    events = stored_envelopes(casebook)
    project(clean_database, events)
    sla = sla_envelopes(clean_database)
    assert len(sla) >= 2  # the clock started, then met
    audit(clean_database, events + sla[:-1])  # the last SLA event never reached the audit
    published(clean_database)
    lost = sla[-1]
    line = f"  sla {case_id}: event {lost.id} (outbox id {lost.sequence}, {lost.type}) has no"
    result = cli("audit", "verify", str(case_id), db=clean_database)
    assert result.code == 1
    assert f"{line} audit entry\n" in result.stdout
    # Not published yet: the pipeline is behind, and the report says so.
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE casebook_sla_outbox SET published_at = NULL WHERE event_id = %s", (lost.id,)
        )
    result = cli("projections", "check", "audit", db=clean_database)
    assert result.code == 1
    assert "in 1 chain(s), 1 not published yet" in result.stdout
    assert f"{line} audit entry; not published yet\n" in result.stdout


def test_check_sla_names_a_case_without_a_row_and_one_behind(
    cli: CliRunner, clean_database: Database, casebook: Casebook
) -> None:
    organisation = register_organisation(casebook)
    untracked = open_request(casebook, organisation)
    behind = open_request(casebook, organisation)
    casebook.execute(c.AssignSeverity(behind, Severity.B), as_agent())
    published(clean_database)
    events = stored_envelopes(casebook)
    lost = [
        e
        for e in events
        if e.subject == str(untracked) or (e.subject == str(behind) and e.sequence == 2)
    ]
    project(clean_database, [e for e in events if e not in lost])
    result = cli("projections", "check", "sla", db=clean_database)
    assert result.code == 1
    assert result.stdout.startswith(
        "sla: 2 of 2 case(s) not up to date: 1 without an SLA row, 1 behind\n"
    )
    assert f"  case {untracked}: no SLA row (the store is at version 1)\n" in result.stdout
    assert f"  case {behind}: SLA row at version 1, the store at version 2\n" in result.stdout
    project(clean_database, lost)
    result = cli("projections", "check", "sla", db=clean_database)
    assert (result.code, result.stdout) == (
        0,
        "sla: complete: all 2 case(s) tracked at their last version\n",
    )


def test_settle_waits_for_entries_still_on_their_way(
    cli: CliRunner, clean_database: Database, casebook: Casebook
) -> None:
    past = live_a_case(clean_database, audit=False)
    published(clean_database)
    events = stored_envelopes(casebook)
    audit(clean_database, events[:-1])
    late = threading.Timer(1.0, audit, (clean_database, events[-1:]))
    late.start()
    try:
        result = cli("audit", "verify", str(past.case_id), "--settle", "30", db=clean_database)
    finally:
        late.join()
    assert (result.code, result.stdout) == (
        0,
        f"case {past.case_id}: 9 entries in 1 chain(s): intact\n",
    )


@pytest.mark.parametrize(
    "args", [["projections", "check", "nothing"], ["projections", "check", "sla", "--settle", "-1"]]
)
def test_check_refuses_bad_input_in_one_line(
    cli: CliRunner, clean_database: Database, args: list[str]
) -> None:
    result = cli(*args, db=clean_database)
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("casebook: error: ")
