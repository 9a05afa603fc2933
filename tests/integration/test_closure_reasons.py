"""Resolving takes a closure reason from the policy; out-of-scope closures are counted apart.

Through the HTTP API, on a projected SLA tracker: every code of the policy resolves a
case and comes back on the case and in the report; an unknown code is a 422 naming
`body.reason`; a case closed as out of scope (the customer's own network, a third-party
add-in: support-policy §3) is neither met nor breached in the compliance figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casebook.database import Database
from domain.values import ClosureReason, Role
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


def work(client: TestClient, api: Api, path: str, body: dict[str, object]) -> None:
    response = client.post(path, json=body, headers=api.as_(Role.AGENT))
    assert response.status_code == 200, response.text


def answered_case(client: TestClient, api: Api, organisation: str) -> str:
    case_id = open_case(client, api, organisation)
    work(client, api, f"/cases/{case_id}/severity", {"severity": "B"})
    work(client, api, f"/cases/{case_id}/responses", {"message_summary": "Looking into it"})
    return case_id


def resolve(client: TestClient, api: Api, case_id: str, reason: str) -> Any:
    return client.post(
        f"/cases/{case_id}/resolution",
        json={"reason": reason, "resolution": "Explained what happened."},
        headers=api.as_(Role.AGENT),
    )


def report(client: TestClient, api: Api) -> dict[str, Any]:
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
    body: dict[str, Any] = response.json()
    return body


def test_every_closure_reason_of_the_policy_resolves_a_case_and_is_recorded(
    api: Api, client: TestClient
) -> None:
    organisation = register_acme(client, api)
    for reason in ClosureReason:
        if reason.value == "unspecified":
            continue  # what old resolutions read as; not offered for new ones
        case_id = answered_case(client, api, organisation)
        response = resolve(client, api, case_id, reason.value)
        assert response.status_code == 200, (reason, response.text)
        events = response.json()["events"]
        assert events == ["casebook.case.resolved.v2", "casebook.case.survey_invited.v1"], events


def test_an_unknown_closure_reason_is_refused_naming_the_field(
    api: Api, client: TestClient
) -> None:
    organisation = register_acme(client, api)
    case_id = answered_case(client, api, organisation)

    response = resolve(client, api, case_id, "solved-itself")

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["rule"] == "closure-reason-is-known"
    assert [error["field"] for error in problem["errors"]] == ["body.reason"]
    case = client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT)).json()
    assert case["status"] != "resolved"


def test_a_resolution_without_a_reason_is_refused_naming_the_field(
    api: Api, client: TestClient
) -> None:
    organisation = register_acme(client, api)
    case_id = answered_case(client, api, organisation)

    response = client.post(
        f"/cases/{case_id}/resolution",
        json={"resolution": "Done."},
        headers=api.as_(Role.AGENT),
    )

    assert response.status_code == 422, response.text
    assert "body.reason" in [error["field"] for error in response.json()["errors"]]


def test_out_of_scope_closures_are_counted_apart_in_the_compliance_report(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    organisation = register_acme(client, api)
    fixed = answered_case(client, api, organisation)
    network = answered_case(client, api, organisation)
    add_in = answered_case(client, api, organisation)
    assert resolve(client, api, fixed, "fixed").status_code == 200
    assert resolve(client, api, network, "out_of_scope_customer_network").status_code == 200
    assert resolve(client, api, add_in, "out_of_scope_third_party").status_code == 200
    project(clean_database, stored_envelopes(api.casebook))

    figures = report(client, api)

    assert figures["overall"]["total"] == 1  # only the in-scope closure
    assert figures["overall"]["met"] == 1
    assert figures["overall"]["out_of_scope"] == 2
    assert figures["closures_out_of_scope"] == 2
    assert figures["closures"]["fixed"] == 1
    assert figures["closures"]["out_of_scope_customer_network"] == 1
    assert figures["closures"]["out_of_scope_third_party"] == 1
