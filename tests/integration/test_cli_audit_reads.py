"""`casebook audit timeline|state|diff|verify|access` against a real database."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest

from casebook.database import Database
from projections.audit.queries import Access, record_access
from tests.integration.audit_support import CasePast, live_a_case
from tests.integration.conftest import CliRunner

pytestmark = pytest.mark.integration


@pytest.fixture
def past(clean_database: Database) -> CasePast:
    return live_a_case(clean_database)


def test_state_at_an_instant_and_at_a_version(
    cli: CliRunner, clean_database: Database, past: CasePast
) -> None:
    at = (past.instants[3] + timedelta(minutes=30)).isoformat()
    result = cli("audit", "state", str(past.case_id), "--at", at, db=clean_database)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"case {past.case_id} at version 3 (2025-03-03T12:00:00Z)")
    assert "  severity: A\n" in result.stdout
    result = cli("audit", "state", str(past.case_id), "--version", "8", "--json", db=clean_database)
    assert result.code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["version"] == 8 and body["state"] == past.states[8]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2025-03-04T12:00:00Z", "--version", "2"], "not both"),
        (["--at", "2025-03-04T12:00:00"], "--at needs a UTC offset"),
        (["--at", "yesterday"], "--at 'yesterday' is not an ISO 8601 instant"),
        (["--at", "2025-03-03T09:59:59Z"], "is before case"),
        (["--version", "99"], "has 9 version(s)"),
        ([], "give --at (an instant) or --version"),
    ],
)
def test_state_refusals_are_one_line(
    cli: CliRunner, clean_database: Database, past: CasePast, args: list[str], message: str
) -> None:
    result = cli("audit", "state", str(past.case_id), *args, db=clean_database)
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("casebook: error: ")
    assert message in result.stderr


def test_diff_between_instants_and_versions(
    cli: CliRunner, clean_database: Database, past: CasePast
) -> None:
    start = (past.instants[6] + timedelta(minutes=1)).isoformat()
    end = (past.instants[9] + timedelta(minutes=1)).isoformat()
    result = cli(
        "audit", "diff", str(past.case_id), "--from", start, "--to", end, db=clean_database
    )
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"case {past.case_id}: version 6 (")
    assert "  status: open -> open" not in lines  # resolved, then reopened: no change
    assert any(
        line.startswith("  v7  2025-03-04T18:00:00Z  casebook.case.resolved.v2") for line in lines
    )
    assert any(line.startswith("  v8  ") and "survey_invited" in line for line in lines)
    assert any(line.startswith("  v9  ") and "reopened" in line for line in lines)
    result = cli(
        "audit",
        "diff",
        str(past.case_id),
        "--from-version",
        "6",
        "--to-version",
        "7",
        "--json",
        db=clean_database,
    )
    body = json.loads(result.stdout)
    assert {c["field"]: c["after"] for c in body["changes"]}["status"] == "resolved"
    result = cli(
        "audit",
        "diff",
        str(past.case_id),
        "--from-version",
        "7",
        "--to-version",
        "6",
        db=clean_database,
    )
    assert result.code == 1 and "--to-version names version 6" in result.stderr


def test_timeline_in_time_order(cli: CliRunner, clean_database: Database, past: CasePast) -> None:
    result = cli("audit", "timeline", str(past.case_id), db=clean_database)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 9
    assert "case #3  casebook.case.escalated.v1  bob (agent, api)" in lines[2]
    assert "severity: B -> A" in lines[2]
    body = json.loads(
        cli("audit", "timeline", str(past.case_id), "--json", db=clean_database).stdout
    )
    assert [e["seq"] for e in body["entries"]] == list(range(1, 10))
    unknown = cli("audit", "timeline", "00000000-0000-4000-8000-000000000000", db=clean_database)
    assert unknown.code == 1 and "case-exists" in unknown.stderr


def test_verify_names_the_first_broken_link_and_exits_1(
    cli: CliRunner, clean_database: Database, past: CasePast
) -> None:
    whole = cli("audit", "verify", db=clean_database)
    assert whole.code == 0, whole.stderr
    assert whole.stdout == (
        "the audit log: 10 entries in 2 chain(s) and 0 access record(s): intact\n"
    )
    assert "verifying" in whole.stderr  # the progress display
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM casebook_audit_entries WHERE subject = %s AND seq = 4", (past.case_id,)
        )
    for args in ([], [str(past.case_id)]):
        result = cli("audit", "verify", *args, db=clean_database)
        assert result.code == 1
        assert f"  case {past.case_id}: entry 5 (entry id" in result.stdout
        assert "entry 4 is missing before it" in result.stdout
    body = json.loads(cli("audit", "verify", "--json", db=clean_database).stdout)
    assert body["intact"] is False and body["breaks"][0]["seq"] == 5


def test_access_lists_reads_with_filters(
    cli: CliRunner, clean_database: Database, past: CasePast
) -> None:
    with psycopg.connect(clean_database.url) as conn, conn.transaction():
        for principal, case in (("key-1", past.case_id), ("key-2", past.case_id), ("key-1", None)):
            record_access(
                conn,
                Access(
                    principal,
                    "agent",
                    "get_case",
                    "GET",
                    "/cases/x",
                    str(case) if case else None,
                    None,
                    "ticket 42",
                    "req-1",
                    "10.0.0.7",
                ),
            )
    result = cli("audit", "access", "--principal", "key-1", db=clean_database)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(
        "key-1 (agent)  GET /cases/x  get_case" in line for line in lines
    )
    assert "reason=ticket 42" in lines[0] and "from=10.0.0.7" in lines[0]
    body = json.loads(
        cli(
            "audit",
            "access",
            "--case",
            str(past.case_id),
            "--limit",
            "1",
            "--json",
            db=clean_database,
        ).stdout
    )
    assert len(body["items"]) == 1 and body["next_after"] == body["items"][0]["access_id"]
    empty = cli("audit", "access", "--since", "2999-01-01T00:00:00Z", db=clean_database)
    assert empty.code == 0 and empty.stdout == ""
    bad = cli(
        "audit",
        "access",
        "--since",
        "2025-02-01T00:00:00Z",
        "--until",
        "2025-01-01T00:00:00Z",
        db=clean_database,
    )
    assert bad.code == 1 and "--since" in bad.stderr
