"""Every refusal is an RFC 9457 problem naming its rule; bad input is never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from structlog.testing import capture_logs

from casebook.database import Database
from domain.values import Role
from entrypoints.migrate import apply_migrations
from tests.integration.api_support import Api, open_case, register_acme, running_api

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


@pytest.fixture
def case_id(api: Api, client: TestClient) -> str:
    return open_case(client, api, register_acme(client, api))


def problem_of(response: Any, status: int, rule: str) -> dict[str, Any]:
    """The problem body, after checking the RFC 9457 members every problem has."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://casebook.example/problems/{rule}"
    assert body["rule"] == rule
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_an_invalid_field_is_a_422_naming_it(api: Api, client: TestClient, case_id: str) -> None:
    response = client.post(
        f"/cases/{case_id}/severity", json={"severity": "X"}, headers=api.as_(Role.AGENT)
    )
    body = problem_of(response, 422, "request-is-valid")
    assert body["errors"] == [
        {"field": "body.severity", "message": "Input should be 'A', 'B' or 'C'"}
    ]


@pytest.mark.parametrize(
    ("content", "content_type", "field"),
    [
        (b'{"severity": ', "application/json", "body"),
        (b'{"severity": "B"}', "text/plain", "body"),
        (b"", "application/json", "body"),
        (b'{"severity": "B", "colour": "red"}', "application/json", "body.colour"),
        (
            b'{"severity": "B", "expected_version": 1e999}',
            "application/json",
            "body.expected_version",
        ),
        (
            b'{"severity": "B", "expected_version": ' + b"9" * 400 + b"}",
            "application/json",
            "body.expected_version",
        ),
        (b'{"severity": "B", "expected_version": -1}', "application/json", "body.expected_version"),
        (b'["B"]', "application/json", "body"),
        (
            b'{"severity": "B", "expected_version": ' + b"9" * 5000 + b"}",
            "application/json",
            "body",
        ),
        (b'{"severity": "\xff\xfe"}', "application/json", "body"),
    ],
)
def test_malformed_bodies_are_422_not_500(
    content: bytes, content_type: str, field: str, api: Api, client: TestClient, case_id: str
) -> None:
    headers = api.as_(Role.AGENT, **{"Content-Type": content_type})
    response = client.post(f"/cases/{case_id}/severity", content=content, headers=headers)
    body = problem_of(response, 422, "request-is-valid")
    assert field in [error["field"] for error in body["errors"]]


def test_a_body_nested_deeper_than_the_limit_is_refused_before_it_is_parsed(
    api: Api, client: TestClient, case_id: str
) -> None:
    headers = api.as_(Role.AGENT, **{"Content-Type": "application/json"})
    deep = b"[" * 100_000 + b"]" * 100_000
    response = client.post(f"/cases/{case_id}/severity", content=deep, headers=headers)
    body = problem_of(response, 422, "json-depth-limit")
    assert [error["field"] for error in body["errors"]] == ["body"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("If-Match", "v3"),
        ("If-Match", '"1", "2"'),
        ("If-Match", "9" * 40),
        ("Idempotency-Key", "a b"),
    ],
)
def test_malformed_guard_headers_are_422_naming_the_header(
    header: str, value: str, api: Api, client: TestClient, case_id: str
) -> None:
    response = client.post(
        f"/cases/{case_id}/notes",
        json={"text": "x"},
        headers=api.as_(Role.AGENT, **{header: value}),
    )
    body = problem_of(response, 422, "request-is-valid")
    assert body["errors"][0]["field"] == f"header.{header}"


def test_texts_with_nul_characters_are_refused(api: Api, client: TestClient, case_id: str) -> None:
    response = client.post(
        f"/cases/{case_id}/notes", json={"text": "a\u0000b"}, headers=api.as_(Role.AGENT)
    )
    assert problem_of(response, 422, "request-is-valid")["errors"][0]["field"] == "body.text"


def test_a_malformed_id_in_the_path_is_a_422_naming_it(api: Api, client: TestClient) -> None:
    response = client.get("/cases/not-a-uuid", headers=api.as_(Role.AGENT))
    assert problem_of(response, 422, "request-is-valid")["errors"][0]["field"] == "path.case_id"


def test_an_unknown_case_is_a_404(api: Api, client: TestClient) -> None:
    response = client.get(f"/cases/{uuid.uuid4()}", headers=api.as_(Role.AGENT))
    problem_of(response, 404, "case-exists")


def test_an_unknown_organisation_is_a_404(api: Api, client: TestClient) -> None:
    response = client.get(f"/organisations/{uuid.uuid4()}/cases", headers=api.as_(Role.AUDITOR))
    problem_of(response, 404, "organisation-exists")


def test_a_stale_if_match_is_a_409_with_the_current_version(
    api: Api, client: TestClient, case_id: str
) -> None:
    response = client.post(
        f"/cases/{case_id}/notes",
        json={"text": "late"},
        headers=api.as_(Role.AGENT, **{"If-Match": '"7"'}),
    )
    body = problem_of(response, 409, "expected-version-matches")
    assert (body["current_version"], body["expected_version"]) == (1, 7)


def test_if_match_and_expected_version_must_agree(
    api: Api, client: TestClient, case_id: str
) -> None:
    response = client.post(
        f"/cases/{case_id}/notes",
        json={"text": "x", "expected_version": 1},
        headers=api.as_(Role.AGENT, **{"If-Match": '"2"'}),
    )
    body = problem_of(response, 422, "one-expected-version")
    assert body["errors"][0]["field"] == "body.expected_version"


def test_a_second_assessment_is_a_409(api: Api, client: TestClient, case_id: str) -> None:
    url, headers = f"/cases/{case_id}/severity", api.as_(Role.AGENT)
    assert client.post(url, json={"severity": "B"}, headers=headers).status_code == 200
    problem_of(
        client.post(url, json={"severity": "C"}, headers=headers), 409, "severity-assigned-once"
    )


def test_severity_a_for_a_billing_request_is_refused_by_its_rule(
    api: Api, client: TestClient
) -> None:
    billing = open_case(client, api, register_acme(client, api), category="billing")
    response = client.post(
        f"/cases/{billing}/severity", json={"severity": "A"}, headers=api.as_(Role.AGENT)
    )
    body = problem_of(response, 422, "severity-a-only-for-technical")
    assert body["title"] == "Severity A is only for technical requests."


def test_an_agent_assigning_a_colleague_is_a_403(
    api: Api, client: TestClient, case_id: str
) -> None:
    response = client.put(
        f"/cases/{case_id}/agent", json={"agent_id": "someone-else"}, headers=api.as_(Role.AGENT)
    )
    problem_of(response, 403, "agents-self-assign-only")


def test_no_key_is_a_401_asking_for_a_bearer_token(client: TestClient, case_id: str) -> None:
    response = client.get(f"/cases/{case_id}")
    problem_of(response, 401, "bearer-api-key-required")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_a_401(api: Api, client: TestClient, case_id: str) -> None:
    key = api.keys.create("agent")
    api.keys.revoke(key.key_id)
    response = client.get(f"/cases/{case_id}", headers={"Authorization": f"Bearer {key.token}"})
    problem_of(response, 401, "bearer-api-key-required")


def test_a_wrong_role_is_a_403_even_with_a_broken_body(
    api: Api, client: TestClient, case_id: str
) -> None:
    response = client.post(
        f"/cases/{case_id}/notes",
        content=b"{not json",
        headers=api.as_(Role.AUDITOR, **{"Content-Type": "application/json"}),
    )
    problem_of(response, 403, "role-may-use-route")


def test_unknown_routes_and_methods_are_problems_too(api: Api, client: TestClient) -> None:
    problem_of(client.get("/nowhere", headers=api.as_(Role.AGENT)), 404, "route-exists")
    problem_of(client.patch("/cases", headers=api.as_(Role.AGENT)), 405, "method-allowed")


def test_the_request_id_is_echoed_or_made_up(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    made_up = client.get("/healthz", headers={"X-Request-ID": "bad id\twith tabs"})
    assert made_up.headers["X-Request-ID"] not in ("", "bad id\twith tabs")


def test_a_database_that_went_away_is_a_503(new_database: Any, database: Database) -> None:
    db: Database = new_database()
    apply_migrations(db)
    # Keys stay reachable, so the refusal comes from the event store itself.
    with running_api(db, keys_in=database) as api, TestClient(api.app) as client:
        case_id = open_case(client, api, register_acme(client, api))
        with psycopg.connect(db.with_dbname("postgres").url, autocommit=True) as conn:
            name = sql.Identifier(db.dbname)
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (db.dbname,),
            )
        try:
            problem_of(client.get("/readyz"), 503, "database-available")
            response = client.post(
                f"/cases/{case_id}/notes", json={"text": "x"}, headers=api.as_(Role.AGENT)
            )
            assert problem_of(response, 503, "database-available")
            assert response.headers["Retry-After"]
        finally:
            with psycopg.connect(db.with_dbname("postgres").url, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))


def test_each_request_logs_one_access_line_without_personal_data(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)
    with capture_logs() as logs:
        response = client.delete(
            f"/organisations/{organisation_id}/contacts",
            params={"kind": "email", "value": "it@acme.example"},
            headers=api.as_(Role.SUPERVISOR, **{"X-Request-ID": "req-42"}),
        )
    assert response.status_code == 200, response.text
    access = [entry for entry in logs if entry["event"] == "http.request"]
    assert access == [
        {
            "event": "http.request",
            "log_level": "info",
            "method": "DELETE",
            "path": "/organisations/{organisation_id}/contacts",
            "status": 200,
            "ms": access[0]["ms"],
            "principal": api.principals[Role.SUPERVISOR],
            "request_id": "req-42",
            "trace_id": access[0]["trace_id"],
        }
    ]
    assert "acme.example" not in str(logs)
