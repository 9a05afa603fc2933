"""The SLA read routes over a projected tracker: paging, compliance figures, clear refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from casebook.database import Database
from domain.values import Role
from tests.integration.api_support import Api, open_case, register_acme, running_api
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.sla_support import project, stored_envelopes

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


def work(client: TestClient, api: Api, path: str, body: dict[str, object]) -> None:
    response = client.post(path, json=body, headers=api.as_(Role.AGENT))
    assert response.status_code == 200, response.text


def test_the_queue_pages_by_deadline_with_a_next_link(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    organisation = register_acme(client, api)
    cases = [open_case(client, api, organisation) for _ in range(5)]
    for case_id in cases:
        work(client, api, f"/cases/{case_id}/severity", {"severity": "C"})
    project(clean_database, stored_envelopes(api.casebook))
    seen: list[str] = []
    url: str | None = "/queue?limit=2"
    while url:
        response = client.get(url, headers=api.as_(Role.AGENT))
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(item["case_id"] for item in body["items"])
        url = body["next"]
    whole = client.get("/queue", headers=api.as_(Role.AGENT)).json()["items"]
    assert seen == [item["case_id"] for item in whole]
    assert sorted(seen) == sorted(cases)
    dues = [item["due_at"] for item in whole]
    assert dues == sorted(dues)


def test_the_compliance_report_counts_met_and_breached_per_severity(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    organisation = register_acme(client, api)
    answered, waiting = open_case(client, api, organisation), open_case(client, api, organisation)
    for case_id in (answered, waiting):
        work(client, api, f"/cases/{case_id}/severity", {"severity": "B"})
    work(client, api, f"/cases/{answered}/responses", {"message_summary": "On it"})
    project(clean_database, stored_envelopes(api.casebook))
    now = datetime.now(UTC)
    response = client.get(
        "/reports/sla-compliance",
        params={
            "since": (now - timedelta(days=1)).isoformat(),
            "until": (now + timedelta(days=1)).isoformat(),
        },
        headers=api.as_(Role.SUPERVISOR),
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["overall"] == {
        "met": 1,
        "breached": 0,
        "total": 1,
        "met_rate": 1.0,
        "breach_rate": 0.0,
        "out_of_scope": 0,
    }
    assert report["by_severity"]["B"]["met"] == 1
    assert report["by_category"]["technical"]["total"] == 1


def test_sla_of_a_case_the_tracker_has_not_seen_is_a_404_naming_the_rule(
    api: Api, client: TestClient
) -> None:
    response = client.get(
        "/cases/00000000-0000-0000-0000-000000000001/sla", headers=api.as_(Role.AGENT)
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["rule"] == "case-is-tracked"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2025-03-01T00:00:00"}, "query.since"),
        ({"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"}, "query.until"),
    ],
)
def test_a_bad_report_range_names_the_field_at_fault(
    api: Api, client: TestClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/reports/sla-compliance", params=params, headers=api.as_(Role.AUDITOR))
    assert response.status_code == 422
    problem = response.json()
    assert problem["rule"] == "report-range-is-valid"
    assert problem["errors"][0]["field"] == field


def test_a_forged_queue_cursor_is_refused_naming_the_parameter(
    api: Api, client: TestClient
) -> None:
    response = client.get("/queue", params={"after": "bm9wZQ"}, headers=api.as_(Role.AGENT))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.after"
