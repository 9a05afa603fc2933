"""The satisfaction report (§6): CSAT and response rate of resolved cases, by period,
category, severity and agent, through the HTTP API on a projected SLA tracker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casebook.database import Database
from domain.values import Role
from tests.integration.api_support import Api, open_case, register_acme, running_api
from tests.integration.sla_support import project, stored_envelopes

pytestmark = pytest.mark.integration


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


def resolved_case(
    client: TestClient, api: Api, organisation: str, severity: str, agent: Role
) -> str:
    """A case `agent` takes, assesses at `severity`, answers and resolves."""
    case_id = open_case(client, api, organisation)
    assigned = client.put(
        f"/cases/{case_id}/agent", json={"agent_id": api.principals[agent]}, headers=api.as_(agent)
    )
    assert assigned.status_code == 200, assigned.text
    for path, body in (
        ("severity", {"severity": severity}),
        ("responses", {"message_summary": "Looking into it"}),
        ("resolution", {"reason": "fixed", "resolution": "Fixed the MX record."}),
    ):
        response = client.post(f"/cases/{case_id}/{path}", json=body, headers=api.as_(agent))
        assert response.status_code == 200, response.text
    return case_id


def answer(client: TestClient, api: Api, case_id: str, score: int) -> None:
    response = client.post(
        f"/cases/{case_id}/satisfaction", json={"score": score}, headers=api.as_(Role.PORTAL)
    )
    assert response.status_code == 200, response.text


def report(client: TestClient, api: Api, role: Role = Role.SUPERVISOR) -> Any:
    now = datetime.now(UTC)
    return client.get(
        "/reports/satisfaction",
        params={
            "since": (now - timedelta(days=1)).isoformat(),
            "until": (now + timedelta(days=1)).isoformat(),
            "period": "day",
        },
        headers=api.as_(role),
    )


def test_csat_and_response_rate_of_resolved_cases_by_group(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    organisation = register_acme(client, api)
    happy = resolved_case(client, api, organisation, "B", Role.AGENT)
    unhappy = resolved_case(client, api, organisation, "B", Role.AGENT)
    resolved_case(client, api, organisation, "C", Role.SUPERVISOR)  # never answered
    open_case(client, api, organisation)  # not resolved: invited to nothing yet
    answer(client, api, happy, 5)
    answer(client, api, unhappy, 2)
    project(clean_database, stored_envelopes(api.casebook))

    response = report(client, api)

    assert response.status_code == 200, response.text
    body = response.json()
    total = body["total"]
    assert (total["invited"], total["answered"], total["satisfied"]) == (3, 2, 1)
    assert (total["csat"], total["mean_score"]) == (0.5, 3.5)
    assert total["response_rate"] == pytest.approx(2 / 3)
    assert [v["invited"] for v in body["by_period"].values()] == [3]
    assert {k: v["answered"] for k, v in body["by_severity"].items()} == {"B": 2, "C": 0}
    assert body["by_severity"]["C"]["csat"] is None
    assert body["by_category"]["technical"]["invited"] == 3
    by_agent = {k: (v["invited"], v["satisfied"]) for k, v in body["by_agent"].items()}
    assert by_agent == {api.principals[Role.AGENT]: (2, 1), api.principals[Role.SUPERVISOR]: (1, 0)}


def test_the_report_is_for_supervisors_and_analysts(api: Api, client: TestClient) -> None:
    assert report(client, api, Role.ANALYST).status_code == 200
    for role in (Role.AGENT, Role.AUDITOR, Role.PORTAL):
        assert report(client, api, role).status_code == 403


def test_a_range_without_offsets_is_a_422_naming_it(api: Api, client: TestClient) -> None:
    response = client.get(
        "/reports/satisfaction",
        params={"since": "2026-01-01T00:00:00"},
        headers=api.as_(Role.SUPERVISOR),
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.since"
