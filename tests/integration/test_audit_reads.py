"""The auditor routes: a case as of any instant or version, diffs, timelines, verification."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from casebook.database import Database
from domain.values import Role
from entrypoints.migrate import apply_migrations
from tests.integration.api_support import Api, running_api
from tests.integration.audit_support import CasePast, live_a_case
from tests.integration.conftest import ON_BOTH_SERVERS, DatabaseFactory

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def db(new_database: DatabaseFactory) -> Database:
    database = new_database()
    apply_migrations(database)
    return database


@pytest.fixture(scope="module")
def past(db: Database) -> CasePast:
    return live_a_case(db)


@pytest.fixture(scope="module")
def api_on_db(db: Database) -> Iterator[Api]:
    with running_api(db) as running:
        yield running


@pytest.fixture(scope="module")
def client(api_on_db: Api) -> Iterator[TestClient]:
    with TestClient(api_on_db.app) as client:
        yield client


def audit_get(client: TestClient, api: Api, path: str, **params: Any) -> Any:
    return client.get(f"/audit{path}", params=params, headers=api.as_(Role.AUDITOR))


def test_the_state_at_every_version_is_what_the_case_was_then(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    for version, state in past.states.items():
        response = audit_get(client, api_on_db, f"/cases/{past.case_id}/state", version=version)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["version"] == version
        assert body["state"] == state
        assert body["version_at"] == past.instants[version].isoformat().replace("+00:00", "Z")


def test_the_state_at_any_instant_is_the_last_version_by_then(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    for version, instant in past.instants.items():
        for at in (instant, instant + HOUR / 2):  # the event's instant itself, and after it
            response = audit_get(
                client, api_on_db, f"/cases/{past.case_id}/state", at=at.isoformat()
            )
            assert response.status_code == 200, response.text
            assert response.json()["version"] == version
            assert response.json()["state"] == past.states[version]


def test_severity_changes_and_the_reopen_show_as_they_were(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    def at(version: int, later: timedelta = HOUR / 2) -> dict[str, Any]:
        when = (past.instants[version] + later).isoformat()
        response = audit_get(client, api_on_db, f"/cases/{past.case_id}/state", at=when)
        state: dict[str, Any] = response.json()["state"]
        return state

    assert (at(1)["status"], at(1)["severity"]) == ("awaiting_assessment", None)
    assert at(2)["severity"] == "B"
    assert at(3)["severity"] == "A"  # escalated
    assert at(4)["severity"] == "A"  # the customer did not answer
    assert at(5)["severity"] == "B"  # downgraded on that record
    assert [h["severity"] for h in at(5)["severity_history"]] == ["B", "A", "B"]
    # Resolved (version 7) and its survey invitation (8) at one instant.
    assert (at(8)["status"], at(8)["resolved_at"]) == ("resolved", "2025-03-04T18:00:00Z")
    assert (at(9)["status"], at(9)["resolved_at"]) == ("open", None)  # reopened
    assert at(9, later=timedelta(days=400))["version"] == 9


def test_an_instant_before_the_opening_names_the_field(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    before = (past.instants[1] - timedelta(seconds=1)).isoformat()
    response = audit_get(client, api_on_db, f"/cases/{past.case_id}/state", at=before)
    assert response.status_code == 422
    assert response.json()["rule"] == "case-opened-by-then"
    assert response.json()["errors"][0]["field"] == "query.at"


@pytest.mark.parametrize(
    ("params", "status", "rule", "field"),
    [
        ({"at": "2025-03-04T12:00:00"}, 422, "audit-query-is-valid", "query.at"),
        (
            {"at": "2025-03-04T12:00:00Z", "version": 2},
            422,
            "audit-query-is-valid",
            "query.version",
        ),
        ({}, 422, "audit-query-is-valid", "query.at"),
        ({"version": 10}, 404, "case-version-exists", "query.version"),
        ({"version": 0}, 422, "request-is-valid", "query.version"),
    ],
)
def test_unclear_points_in_time_are_refused_naming_the_field(
    client: TestClient,
    api_on_db: Api,
    past: CasePast,
    params: dict[str, Any],
    status: int,
    rule: str,
    field: str,
) -> None:
    response = audit_get(client, api_on_db, f"/cases/{past.case_id}/state", **params)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["rule"] == rule
    assert response.json()["errors"][0]["field"] == field


def test_an_unknown_case_is_a_404(client: TestClient, api_on_db: Api, past: CasePast) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    for path, params in (
        (f"/cases/{unknown}/state", {"version": 1}),
        (f"/cases/{unknown}/diff", {"from_version": 0}),
        (f"/cases/{unknown}/timeline", {}),
        (f"/cases/{unknown}/verification", {}),
        (f"/cases/{past.organisation_id}/state", {"version": 1}),  # not a case
    ):
        response = audit_get(client, api_on_db, path, **params)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["rule"] == "case-exists"


def test_a_diff_lists_each_changed_field_and_the_events_between(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    response = audit_get(
        client,
        api_on_db,
        f"/cases/{past.case_id}/diff",
        **{
            "from": (past.instants[2] + HOUR / 2).isoformat(),
            "to": (past.instants[8] + HOUR / 2).isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from_version"], body["to_version"]) == (2, 8)
    changes = {c["field"]: (c["before"], c["after"]) for c in body["changes"]}
    assert changes["status"] == ("open", "resolved")
    assert changes["resolved_at"] == (None, "2025-03-04T18:00:00Z")
    assert changes["first_responded_at"] == (None, "2025-03-04T17:00:00Z")
    assert "severity" not in changes  # B, then A, then back to B
    assert [h["severity"] for h in changes["severity_history"][1]] == ["B", "A", "B"]
    assert [e["version"] for e in body["events"]] == [3, 4, 5, 6, 7, 8]
    assert [e["type"].split(".")[2] for e in body["events"]] == [
        "escalated",
        "customer_unresponsive",
        "downgraded",
        "responded",
        "resolved",
        "survey_invited",
    ]


def test_a_diff_by_versions_from_before_the_opening(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    response = audit_get(
        client, api_on_db, f"/cases/{past.case_id}/diff", from_version=0, to_version=1
    )
    body = response.json()
    assert response.status_code == 200, response.text
    assert body["from_version_at"] is None
    assert {c["field"]: c["after"] for c in body["changes"]}["status"] == "awaiting_assessment"
    assert all(c["before"] is None for c in body["changes"])
    # Without an end: up to the latest version (the reopen).
    body = audit_get(client, api_on_db, f"/cases/{past.case_id}/diff", from_version=8).json()
    assert body["to_version"] == 9
    assert {c["field"]: c["after"] for c in body["changes"]}["status"] == "open"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-03-04T12:00:00Z", "to": "2025-03-04T11:00:00Z"}, "query.to"),
        ({"from_version": 5, "to_version": 3}, "query.to_version"),
        ({"from": "2025-03-04T12:00:00"}, "query.from"),
        ({"from": "2025-03-04T12:00:00Z", "from_version": 2}, "query.from_version"),
        ({"to_version": 3}, "query.from"),
    ],
)
def test_a_diff_out_of_order_or_unclear_is_refused_naming_the_field(
    client: TestClient, api_on_db: Api, past: CasePast, params: dict[str, Any], field: str
) -> None:
    response = audit_get(client, api_on_db, f"/cases/{past.case_id}/diff", **params)
    assert response.status_code == 422, response.text
    assert response.json()["rule"] == "audit-query-is-valid"
    assert response.json()["errors"][0]["field"] == field


def test_the_timeline_lists_case_entries_in_time_order(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    response = audit_get(client, api_on_db, f"/cases/{past.case_id}/timeline")
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    assert [e["seq"] for e in entries] == list(range(1, 10))
    assert [e["occurred_at"] for e in entries] == sorted(e["occurred_at"] for e in entries)
    escalation = entries[2]
    assert escalation["event_type"] == "casebook.case.escalated.v1"
    assert (escalation["actor_id"], escalation["actor_role"]) == ("bob", "agent")
    assert escalation["changes"]["severity"] == ["B", "A"]


def test_verification_reports_the_first_broken_link(
    client: TestClient, api_on_db: Api, db: Database, new_database: DatabaseFactory
) -> None:
    own = new_database()  # tampering must not disturb the other tests' case
    apply_migrations(own)
    case = live_a_case(own)
    with running_api(own) as api, TestClient(api.app) as own_client:
        intact = audit_get(own_client, api, f"/cases/{case.case_id}/verification").json()
        assert intact == {
            "intact": True,
            "unmodified": True,
            "complete": True,
            "chains": 1,
            "entries": 9,
            "access_records": 0,  # the access log is the whole log's to check
            "breaks": [],
            "missing_entries": 0,
            "incomplete_chains": 0,
            "missing": [],
        }
        with psycopg.connect(own.url, autocommit=True) as conn:
            conn.execute(
                "UPDATE casebook_audit_entries SET actor_id = 'mallory' "
                "WHERE subject = %s AND seq = 5",
                (case.case_id,),
            )
        broken = audit_get(own_client, api, f"/cases/{case.case_id}/verification").json()
        assert broken["intact"] is False
        assert broken["breaks"][0]["seq"] == 5
        assert broken["breaks"][0]["reason"] == "its content does not match its hash"
        whole = audit_get(own_client, api, "/verification").json()
        assert whole["chains"] == 2 and whole["entries"] == 10  # and the organisation's
        assert whole["access_records"] == 3  # these three reads, each recorded first
        assert [b["description"] for b in whole["breaks"]] == [
            b["description"] for b in broken["breaks"]
        ]
        # An access record changed afterwards is the whole log's break too.
        with psycopg.connect(own.url, autocommit=True) as conn:
            conn.execute("UPDATE casebook_audit_access SET reason = 'audit' WHERE seq = 2")
        again = audit_get(own_client, api, "/verification").json()
        [access] = [b for b in again["breaks"] if b["stream"] == "access"]
        assert (access["subject"], access["seq"]) == ("log", 2)
        assert access["reason"] == "its content does not match its hash"


def test_only_auditors_reach_the_audit_routes(
    client: TestClient, api_on_db: Api, past: CasePast
) -> None:
    for role in (Role.AGENT, Role.SUPERVISOR, Role.ANALYST, Role.ADMIN):
        response = client.get(
            f"/audit/cases/{past.case_id}/state", params={"version": 1}, headers=api_on_db.as_(role)
        )
        assert response.status_code == 403
        assert response.json()["rule"] == "role-may-use-route"
