"""The audit trail on real PostgreSQL: entries appended per event, tampering found."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Severity
from projections.audit.projection import AuditProjection
from projections.audit.verify import verify_case, verify_log
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.sla_support import rows, stored_envelopes
from tests.integration.write_side import as_agent, open_request, register_organisation

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]


@pytest.fixture
def audited_case(clean_database: Database) -> Iterator[UUID]:
    """A case with four events (opened, assessed, escalated, responded), audited."""
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    casebook.execute(c.AssignSeverity(case_id, Severity.B), as_agent())
    casebook.execute(c.EscalateSeverity(case_id, Severity.A, "Site down"), as_agent())
    casebook.execute(c.Respond(case_id, "On it"), as_agent())
    with psycopg.connect(clean_database.url) as conn, conn.transaction():
        AuditProjection().apply(conn, stored_envelopes(casebook))
    casebook.close()
    yield case_id


def tamper(database: Database, statement: str, *params: object) -> None:
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(statement, params)


def first_break_of(database: Database, case_id: UUID) -> str:
    with psycopg.connect(database.url) as conn:
        result = verify_case(conn, str(case_id))
    assert not result.intact
    return result.breaks[0].describe()


def test_every_event_gets_an_entry_with_actor_and_changes(
    clean_database: Database, audited_case: UUID
) -> None:
    entries = rows(
        clean_database,
        "SELECT seq, event_type, actor_id, actor_role, channel, changes "
        "FROM casebook_audit_entries WHERE subject = %s ORDER BY seq",
        audited_case,
    )
    assert [e[1] for e in entries] == [
        "casebook.case.opened.v5",
        "casebook.case.severity_assigned.v1",
        "casebook.case.escalated.v1",
        "casebook.case.responded.v2",
    ]
    assert entries[2][2:5] == ("bob", "agent", "api")
    assert entries[2][5]["severity"] == ["B", "A"]
    with psycopg.connect(clean_database.url) as conn:
        assert verify_case(conn, str(audited_case)).intact
        whole = verify_log(conn)
    assert whole.intact and whole.entries == 5  # the organisation's registration too


def test_an_edited_row_is_named(clean_database: Database, audited_case: UUID) -> None:
    tamper(
        clean_database,
        "UPDATE casebook_audit_entries SET actor_id = 'mallory' WHERE subject = %s AND seq = 2",
        audited_case,
    )
    assert first_break_of(clean_database, audited_case).startswith(f"case {audited_case}: entry 2")


def test_a_deleted_row_is_named(clean_database: Database, audited_case: UUID) -> None:
    tamper(
        clean_database,
        "DELETE FROM casebook_audit_entries WHERE subject = %s AND seq = 3",
        audited_case,
    )
    assert "entry 3 is missing" in first_break_of(clean_database, audited_case)


def test_an_inserted_row_is_named(clean_database: Database, audited_case: UUID) -> None:
    tamper(
        clean_database,
        "INSERT INTO casebook_audit_entries (stream, subject, seq, event_id, event_type, "
        "case_id, organisation_id, occurred_at, recorded_at, actor_id, actor_role, channel, "
        "outcome, changes, prev_hash, hash) SELECT stream, subject, seq, event_id, "
        "event_type, case_id, organisation_id, occurred_at, recorded_at, 'mallory', "
        "actor_role, channel, outcome, changes, prev_hash, hash "
        "FROM casebook_audit_entries WHERE subject = %s AND seq = 2",
        audited_case,
    )
    assert "entry 2" in first_break_of(clean_database, audited_case)


def test_reordered_rows_are_named(clean_database: Database, audited_case: UUID) -> None:
    tamper(
        clean_database,
        "UPDATE casebook_audit_entries SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END "
        "WHERE subject = %s AND seq IN (2, 3)",
        audited_case,
    )
    assert first_break_of(clean_database, audited_case).startswith(f"case {audited_case}: entry 2")


def test_the_whole_log_verification_names_the_tampered_case(
    clean_database: Database, audited_case: UUID
) -> None:
    tamper(
        clean_database,
        "UPDATE casebook_audit_entries SET changes = '{}' WHERE subject = %s AND seq = 4",
        audited_case,
    )
    with psycopg.connect(clean_database.url) as conn:
        result = verify_log(conn)
    assert [b.subject for b in result.breaks] == [str(audited_case)]
    assert result.breaks[0].seq == 4


def test_a_response_stored_before_v2_is_replayed_and_audited_as_v2(
    clean_database: Database,
) -> None:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)
    casebook.execute(c.AssignSeverity(case_id, Severity.B), as_agent())
    casebook.execute(c.Respond(case_id, "On it"), as_agent())
    casebook.close()
    # Rewrite the stored response as a v1 writer stored it: no class_version, no via.
    tamper(
        clean_database,
        "UPDATE casebook_events SET state = convert_to((convert_from(state, 'UTF8')::jsonb"
        " - 'class_version' - 'via')::text, 'UTF8') WHERE topic LIKE %s",
        "%Responded",
    )
    reader = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    try:
        case = reader.get_case(case_id)
        assert case.first_responded_at is not None  # the old event still replays
        envelopes = stored_envelopes(reader)
    finally:
        reader.close()
    responded = next(e for e in envelopes if e.type.startswith("casebook.case.responded"))
    assert (responded.type, responded.data["via"]) == ("casebook.case.responded.v2", "unknown")
    with psycopg.connect(clean_database.url) as conn, conn.transaction():
        AuditProjection().apply(conn, envelopes)
    [(event_type, changes)] = rows(
        clean_database,
        "SELECT event_type, changes FROM casebook_audit_entries "
        "WHERE subject = %s AND event_type LIKE 'casebook.case.responded%%'",
        case_id,
    )
    assert event_type == "casebook.case.responded.v2"
    assert changes["via"] == [None, "unknown"]
