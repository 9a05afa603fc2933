"""The policy's support lines over HTTP, and the line a phone request came in on (§2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casebook.database import Database
from domain.values import Role
from tests.integration.api_support import PHONE_REQUEST, Api, register_acme, running_api

pytestmark = pytest.mark.integration


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


def lines(client: TestClient, api: Api, **query: str) -> dict[str, Any]:
    response = client.get("/support-lines", params=query, headers=api.as_(Role.PORTAL))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_line_the_policy_gives_is_served_with_its_hours_and_languages(
    api: Api, client: TestClient
) -> None:
    served = lines(client, api)

    numbers = {line["id"]: (line["number"], line["countries"]) for line in served["lines"]}
    assert numbers == {
        "us_ca": ("1 800 865 9408", ["US", "CA"]),
        "au": ("1 800 197 503", ["AU"]),
        "gb": ("0800 032 6417", ["GB"]),
        "cn": ("(86) 400-089-0365", ["CN"]),
    }
    assert all(line["hours"] and line["languages"] for line in served["lines"])
    assert [line["id"] for line in served["lines"] if line["fallback"]] == ["cn"]
    assert served["policy_version"] == api.casebook.policy.version


@pytest.mark.parametrize(
    ("country", "line_id", "fallback"),
    [("CA", "us_ca", False), ("gb", "gb", False), ("PL", "cn", True)],
)
def test_a_country_gets_its_own_line_or_the_fallback(
    api: Api, client: TestClient, country: str, line_id: str, fallback: bool
) -> None:
    served = lines(client, api, country=country)

    assert served["country"] == country.upper()
    assert [(line["id"], line["fallback"]) for line in served["lines"]] == [(line_id, fallback)]


def test_a_malformed_country_is_a_422_naming_it(api: Api, client: TestClient) -> None:
    response = client.get("/support-lines?country=P1", headers=api.as_(Role.AGENT))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.country"


def test_a_phone_request_records_the_line_it_came_in_on(api: Api, client: TestClient) -> None:
    organisation_id = register_acme(client, api)
    body = PHONE_REQUEST | {"organisation_id": organisation_id}

    opened = client.post("/cases", json=body | {"support_line": "gb"}, headers=api.as_(Role.AGENT))
    unknown = client.post("/cases", json=body | {"support_line": "pl"}, headers=api.as_(Role.AGENT))

    assert opened.status_code == 201, opened.text
    case_id = opened.json()["aggregate_id"]
    history = client.get(f"/cases/{case_id}/events", headers=api.as_(Role.AUDITOR)).json()
    assert history["events"][0]["type"] == "casebook.case.opened.v5"
    assert history["events"][0]["data"]["support_line"] == "gb"
    assert unknown.status_code == 422
    assert unknown.json()["rule"] == "support-line-is-known"
    assert unknown.json()["errors"][0]["field"] == "body.support_line"
    assert "us_ca" in unknown.json()["detail"]


def test_an_online_request_came_in_on_no_line(api: Api, client: TestClient) -> None:
    organisation_id = register_acme(client, api)
    online = {k: v for k, v in PHONE_REQUEST.items() if k != "caller_phone"}
    body = online | {"organisation_id": organisation_id, "channel": "online", "support_line": "gb"}

    refused = client.post("/cases", json=body, headers=api.as_(Role.PORTAL))

    assert refused.status_code == 422, refused.text
    assert refused.json()["rule"] == "support-line-only-for-phone-requests"
    assert "not one opened online" in refused.json()["detail"]
