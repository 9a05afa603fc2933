"""Audited reads: every read of case data leaves an access record first, or is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from api.access import NOT_CASE_DATA, record_access
from api.deps import GuardedRoute
from api.roles import KEY_OPTIONAL_ROUTES
from casebook.database import Database
from domain.values import Role
from entrypoints.migrate import apply_migrations
from tests.integration.api_support import Api, open_case, register_acme, running_api
from tests.integration.conftest import DatabaseFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def db(new_database: DatabaseFactory) -> Database:
    database = new_database()
    apply_migrations(database)
    return database


@pytest.fixture(scope="module")
def api_on_db(db: Database) -> Iterator[Api]:
    with running_api(db) as running:
        yield running


@pytest.fixture(scope="module")
def client(api_on_db: Api) -> Iterator[TestClient]:
    with TestClient(api_on_db.app) as client:
        yield client


@pytest.fixture(scope="module")
def ids(client: TestClient, api_on_db: Api) -> dict[str, str]:
    organisation_id = register_acme(client, api_on_db)
    return {
        "organisation_id": organisation_id,
        "case_id": open_case(client, api_on_db, organisation_id),
    }


def access_log(client: TestClient, api: Api, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/audit/access", params=params, headers=api.as_(Role.AUDITOR))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_every_guarded_read_route_records_access_unless_it_reads_no_case_data(
    api_on_db: Api,
) -> None:
    audited, exempt = set(), set()
    for route in iter_route_contexts(api_on_db.app.routes):
        original = route.original_route
        if not isinstance(original, GuardedRoute) or "GET" not in (original.methods or ()):
            continue
        calls = [d.call for d in original.dependant.dependencies]
        (audited if record_access in calls else exempt).add(original.name)
        if record_access in calls:
            assert calls[0] is record_access, original.name  # before anything is read
            assert calls.count(record_access) == 1, original.name
    # Routes whose key is optional are guarded only when the deployment requires a key.
    optional = set() if api_on_db.app.state.settings.metrics_require_key else KEY_OPTIONAL_ROUTES
    assert exempt == set(NOT_CASE_DATA) - set(optional)
    assert {
        "get_case",
        "get_case_history",
        "list_organisation_cases",
        "agent_queue",
        "get_case_sla",
        "audit_timeline",
        "list_access_records",
    } <= audited


def test_an_agents_reads_appear_in_the_access_log(
    client: TestClient, api_on_db: Api, ids: dict[str, str]
) -> None:
    case_id, organisation_id = ids["case_id"], ids["organisation_id"]
    agent = api_on_db.as_(Role.AGENT, **{"X-Access-Reason": "customer called: ticket 42"})
    answers = [
        client.get(f"/cases/{case_id}", headers=agent),
        client.get(f"/organisations/{organisation_id}/cases", headers=agent),
        client.get("/queue", headers=agent),
        client.get(f"/cases/{case_id}/sla", headers=agent),  # not tracked here: a 404
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 404]
    records = access_log(client, api_on_db, principal=api_on_db.principals[Role.AGENT])
    assert [r["route"] for r in records[-4:]] == [
        "get_case",
        "list_organisation_cases",
        "agent_queue",
        "get_case_sla",
    ]
    read = records[-4]
    assert [r["seq"] for r in records[-4:]] == [read["seq"] + n for n in range(4)]  # one chain
    assert len(read["hash"]) == 64 and read["hash"] != records[-3]["hash"]
    assert read["role"] == "agent" and read["method"] == "GET"
    assert read["path"] == f"/cases/{case_id}"
    assert read["case_id"] == case_id
    assert read["reason"] == "customer called: ticket 42"
    assert read["request_id"] == answers[0].headers["X-Request-ID"]
    assert read["client_address"] == "testclient"
    assert records[-3]["organisation_id"] == organisation_id
    # The auditor's own reads are recorded too, and filters narrow the list.
    mine = access_log(client, api_on_db, principal=api_on_db.principals[Role.AUDITOR])
    assert mine and {r["route"] for r in mine} == {"list_access_records"}
    of_case = access_log(client, api_on_db, case_id=case_id)
    assert {r["route"] for r in of_case} >= {"get_case", "get_case_sla"}
    assert all(r["case_id"] == case_id for r in of_case)


def test_refused_requests_leave_no_access_record(
    client: TestClient, api_on_db: Api, ids: dict[str, str]
) -> None:
    before = len(access_log(client, api_on_db, case_id=ids["case_id"], limit=500))
    forbidden = client.get(f"/cases/{ids['case_id']}/events", headers=api_on_db.as_(Role.AGENT))
    assert forbidden.status_code == 403
    bad_reason = client.get(
        f"/cases/{ids['case_id']}",
        headers=api_on_db.as_(Role.AGENT, **{"X-Access-Reason": "x" * 201}),
    )
    assert bad_reason.status_code == 422
    assert bad_reason.json()["errors"][0]["field"] == "header.X-Access-Reason"
    after = access_log(client, api_on_db, case_id=ids["case_id"], limit=500)
    assert len(after) == before


def test_access_records_page_by_cursor_and_filter_by_period(
    client: TestClient, api_on_db: Api, ids: dict[str, str]
) -> None:
    for _ in range(3):
        client.get(f"/cases/{ids['case_id']}", headers=api_on_db.as_(Role.SUPERVISOR))
    supervisor = api_on_db.principals[Role.SUPERVISOR]
    headers = api_on_db.as_(Role.AUDITOR)
    first = client.get(
        "/audit/access", params={"principal": supervisor, "limit": 2}, headers=headers
    ).json()
    assert len(first["items"]) == 2 and first["next"]
    rest = client.get(first["next"], headers=headers).json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    ids_seen = [r["access_id"] for r in first["items"] + rest["items"]]
    assert ids_seen == sorted(ids_seen)
    since = first["items"][0]["at"]
    window = access_log(client, api_on_db, principal=supervisor, since=since)
    assert len(window) == 3
    assert access_log(client, api_on_db, principal=supervisor, until=since) == []
    for params, field in (
        ({"since": "2025-01-01T00:00:00"}, "query.since"),
        ({"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "query.until"),
        ({"after": "bm90LW91cnM"}, "query.after"),
    ):
        response = client.get("/audit/access", params=params, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field


def test_a_read_is_refused_when_its_access_record_cannot_be_written(
    new_database: DatabaseFactory,
) -> None:
    own = new_database()
    apply_migrations(own)
    with running_api(own) as api, TestClient(api.app) as client:
        organisation_id = register_acme(client, api)
        case_id = open_case(client, api, organisation_id)
        with psycopg.connect(own.url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse_access_records() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'access log is read-only'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON casebook_audit_access "
                "FOR EACH ROW EXECUTE FUNCTION refuse_access_records()"
            )
        for path in (f"/cases/{case_id}", f"/organisations/{organisation_id}/cases", "/queue"):
            response = client.get(path, headers=api.as_(Role.AGENT))
            assert response.status_code == 503, response.text
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.headers["Retry-After"]
            assert response.json()["rule"] == "access-is-recorded"
            assert "Mail is not delivered" not in response.text
        # Commands are not reads: they still work.
        note = client.post(
            f"/cases/{case_id}/notes",
            json={"text": "Checked the MX record", "visibility": "internal"},
            headers=api.as_(Role.AGENT),
        )
        assert note.status_code == 200, note.text
        # A table that is gone (renamed away) refuses reads the same way.
        with psycopg.connect(own.url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse ON casebook_audit_access")
            assert client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT)).status_code == 200
            conn.execute("ALTER TABLE casebook_audit_access RENAME TO casebook_audit_access_away")
        response = client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT))
        assert response.status_code == 503
        assert response.json()["rule"] == "access-is-recorded"
