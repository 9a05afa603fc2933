"""Every route against every role, generated from the role matrix in api/roles.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.roles import API_ROLES, PUBLIC_ROUTES, ROLE_MATRIX, Endpoint, endpoints, role_table
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Role
from tests.integration.api_support import Api, bearer, open_case, register_acme, running_api
from tests.integration.write_side import close_open_incidents

pytestmark = pytest.mark.integration

API_MANUAL = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture(scope="module")
def api(database: Database) -> Iterator[Api]:
    """The API with every key-optional route (`/metrics`) asking for a key, as the matrix says."""
    settings = Settings(database_url=database.url, metrics_require_key=True)
    with running_api(database, settings=settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


@pytest.fixture(scope="module")
def ids(api: Api, client: TestClient) -> Iterator[dict[str, str]]:
    """Path parameters naming things that exist, so allowed calls get past 404s."""
    organisation_id = register_acme(client, api)
    case_id = open_case(client, api, organisation_id)
    incident = {"services": ["Mail"], "summary": "Mail is slow."}
    declared = client.post("/service-incidents", json=incident, headers=api.as_(Role.SUPERVISOR))
    assert declared.status_code == 201, declared.text
    yield {
        "organisation_id": organisation_id,
        "case_id": case_id,
        "incident_id": declared.json()["aggregate_id"],
        "principal_id": "nobody",
        "subject": "ada",
        "verification_id": str(uuid.uuid4()),
    }
    close_open_incidents(api.casebook)


def endpoints_by_name(api: Api) -> dict[str, Endpoint]:
    return {endpoint.name: endpoint for endpoint in endpoints(api.app.routes)}


def path_of(endpoint: Endpoint, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], endpoint.path)


def test_every_route_is_in_the_role_matrix_or_public(api: Api) -> None:
    names = set(endpoints_by_name(api))
    assert names - ROLE_MATRIX.keys() - PUBLIC_ROUTES == set()
    assert ROLE_MATRIX.keys() - names == set(), "the matrix names routes the app lacks"


@pytest.mark.parametrize("route_name", list(ROLE_MATRIX))
def test_a_route_admits_exactly_the_roles_of_the_matrix(
    route_name: str, api: Api, client: TestClient, ids: dict[str, str]
) -> None:
    endpoint = endpoints_by_name(api)[route_name]
    method, path = endpoint.method, path_of(endpoint, ids)
    body: dict[str, object] | None = {} if method in {"POST", "PUT"} else None
    for role in API_ROLES:
        response = client.request(method, path, json=body, headers=api.as_(role))
        if role in ROLE_MATRIX[route_name]:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["rule"] == "role-may-use-route"

    for headers in ({}, bearer("cbk_" + uuid.uuid4().hex + "_wrong"), {"Authorization": "Basic x"}):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs"])
def test_probes_and_docs_need_no_key(path: str, client: TestClient) -> None:
    assert client.get(path).status_code == 200


def test_the_api_manual_shows_the_role_matrix(api: Api) -> None:
    table = role_table(api.app.routes)
    assert table in API_MANUAL.read_text(encoding="utf-8"), f"paste into docs/api.md:\n\n{table}"
