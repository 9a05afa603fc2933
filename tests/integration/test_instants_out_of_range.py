"""Instants near the ends of what Python represents: a 422 naming the field, or one CLI line.

Converting 9999-12-31T23:59:59-14:00 to UTC, or counting back 30 days from year 1,
overflows; every instant a caller gives is refused outside 1970..8999 before anything
computes with it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casebook.database import Database
from casebook.settings import Settings
from domain.values import Role
from entrypoints.migrate import apply_migrations
from tests.integration.api_support import Api, running_api
from tests.integration.audit_support import CasePast, live_a_case
from tests.integration.conftest import CliRunner, DatabaseFactory
from tests.signing_key import new_signing_key_file

pytestmark = pytest.mark.integration

LATE = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC
EARLY = "0001-01-01T00:00:00+14:00"  # year 0 in UTC
UTC_LATE = "9999-12-31T23:00:00+00:00"  # the deadline, days later, overflows
BEFORE_1970 = "1969-12-31T23:59:59Z"
RANGE = "1970-01-01T00:00:00Z to 8999-12-31T23:59:59Z"


@pytest.fixture(scope="module")
def db(new_database: DatabaseFactory) -> Database:
    database = new_database()
    apply_migrations(database)
    return database


@pytest.fixture(scope="module")
def past(db: Database) -> CasePast:
    return live_a_case(db)


@pytest.fixture(scope="module")
def api_on_db(db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    key = new_signing_key_file(tmp_path_factory.mktemp("audit-key"))  # bundles are signed
    settings = Settings(database_url=db.url, audit_signing_key_file=key)
    with running_api(db, settings=settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(api_on_db: Api) -> Iterator[TestClient]:
    with TestClient(api_on_db.app) as client:
        yield client


def cursor_due(due: str) -> str:
    raw = f"{due}|00000000-0000-0000-0000-000000000001".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CASE, ORG = "{case}", "{organisation}"


@pytest.mark.parametrize(
    ("role", "path", "params", "field"),
    [
        (Role.AUDITOR, f"/audit/cases/{CASE}/evidence", {"until": LATE}, "query.until"),
        (Role.AUDITOR, f"/audit/cases/{CASE}/evidence", {"since": EARLY}, "query.since"),
        (Role.AUDITOR, f"/audit/organisations/{ORG}/evidence", {"until": LATE}, "query.until"),
        (Role.AUDITOR, f"/audit/cases/{CASE}/state", {"at": LATE}, "query.at"),
        (Role.AUDITOR, f"/audit/cases/{CASE}/state", {"at": BEFORE_1970}, "query.at"),
        (Role.AUDITOR, f"/audit/cases/{CASE}/diff", {"from": EARLY}, "query.from"),
        (Role.AUDITOR, f"/audit/cases/{CASE}/diff", {"to": LATE}, "query.to"),
        (Role.AUDITOR, "/audit/access", {"since": LATE}, "query.since"),
        (Role.AUDITOR, "/audit/access", {"until": EARLY}, "query.until"),
        (Role.AUDITOR, "/reports/sla-compliance", {"until": "0001-01-01T00:00:00Z"}, "query.until"),
        (Role.AUDITOR, "/reports/sla-compliance", {"since": LATE}, "query.since"),
    ],
)
def test_a_query_instant_out_of_range_is_a_422_naming_the_parameter(
    client: TestClient,
    api_on_db: Api,
    past: CasePast,
    role: Role,
    path: str,
    params: dict[str, str],
    field: str,
) -> None:
    url = path.format(case=past.case_id, organisation=past.organisation_id)
    response = client.get(url, params=params, headers=api_on_db.as_(role))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["rule"] == "request-is-valid"
    [error] = problem["errors"]
    assert error["field"] == field
    assert RANGE in error["message"]


def test_a_body_instant_out_of_range_is_a_422_naming_the_field(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    body: dict[str, Any] = {"requested": "the error log", "asked_at": LATE}
    response = client.post(
        f"/cases/{past.case_id}/unresponsive", json=body, headers=api_on_db.as_(Role.AGENT)
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "body.asked_at" and RANGE in error["message"]


def test_a_queue_cursor_with_a_deadline_out_of_range_is_refused_as_forged(
    client: TestClient, api_on_db: Api
) -> None:
    response = client.get(
        "/queue", params={"after": cursor_due(LATE)}, headers=api_on_db.as_(Role.AGENT)
    )
    assert response.status_code == 422, response.text
    assert response.json()["rule"] == "cursor-is-valid"
    assert response.json()["errors"][0]["field"] == "query.after"


def test_the_ends_of_the_range_are_answered(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    auditor = api_on_db.as_(Role.AUDITOR)
    evidence = client.get(
        f"/audit/cases/{past.case_id}/evidence",
        params={"since": "1970-01-01T00:00:00Z", "until": "8999-12-31T23:59:59Z"},
        headers=auditor,
    )
    assert evidence.status_code == 200, evidence.text
    # 30 days before the earliest `until` is before 1970, and still computed.
    report = client.get(
        "/reports/sla-compliance", params={"until": "1970-01-01T00:00:00Z"}, headers=auditor
    )
    assert report.status_code == 200, report.text


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("sla", "deadline", "--category", "technical", "--severity", "B", "--opened", LATE), 2),
        (
            ("sla", "deadline", "--category", "technical", "--severity", "B", "--opened", UTC_LATE),
            2,
        ),
        (("sla", "deadline", "--category", "billing", "--severity", "B", "--opened", EARLY), 2),
        (("audit", "export", "--case", CASE, "--until", LATE, "--out", "x.zip"), 2),
        (("audit", "export", "--organisation", ORG, "--since", EARLY, "--out", "x.zip"), 2),
        (("audit", "state", CASE, "--at", LATE), 1),
        (("audit", "diff", CASE, "--from", EARLY), 1),
        (("audit", "diff", CASE, "--to", BEFORE_1970), 1),
        (("audit", "access", "--since", LATE), 1),
        (("audit", "access", "--until", EARLY), 1),
    ],
    ids=lambda v: " ".join(a for a in v if not a.startswith("{")) if isinstance(v, tuple) else "",
)
def test_a_command_line_instant_out_of_range_is_one_line(
    cli: CliRunner,
    db: Database,
    past: CasePast,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    code: int,
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [a.format(case=past.case_id, organisation=past.organisation_id) for a in args]
    result = cli(*argv, db=db)
    assert result.code == code
    assert result.stdout == ""
    assert result.stderr.startswith("casebook: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert RANGE in result.stderr
    assert not (tmp_path / "x.zip").exists()
