"""Service health (policy §1): supervisors declare, update and close service incidents;
the dashboard lists them for customers and support; an opening that an incident in force
may explain shows it first and files nothing until the request confirms it (linking the
case) or calls it unrelated; staff link cases later; the queue and the compliance report
show the links."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casebook import commands as c
from casebook.database import Database
from domain.incidents.errors import IncidentShownFirst
from domain.values import Actor, Category, Channel, ContactKind, Role
from tests.integration.api_support import (
    PHONE_REQUEST,
    REGISTERED_EMAIL,
    REGISTERED_PHONE,
    Api,
    open_case,
    register_acme,
    running_api,
)
from tests.integration.sla_support import project, stored_envelopes
from tests.integration.verification_support import (
    UNREGISTERED_PHONE,
    confirm,
    last_code,
    request_code,
)
from tests.integration.write_side import close_open_incidents

pytestmark = pytest.mark.integration

MAIL_OUTAGE: dict[str, Any] = {
    "services": ["Exchange Online"],
    "categories": ["technical"],
    "summary": "Mail delivery is delayed for customers in Europe.",
}
ONLINE_REQUEST: dict[str, Any] = {
    "requester_id": "ada",
    "channel": "online",
    "category": "technical",
    "title": "Mail is slow",
    "contact_phone": REGISTERED_PHONE,
    "contact_email": REGISTERED_EMAIL,
}


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api
        close_open_incidents(api.casebook)


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


def problem(response: Any, status: int, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["rule"] == rule, body
    return body


def declare(client: TestClient, api: Api, **overrides: Any) -> str:
    response = client.post(
        "/service-incidents", json=MAIL_OUTAGE | overrides, headers=api.as_(Role.SUPERVISOR)
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/service-incidents/{response.json()['aggregate_id']}"
    return str(response.json()["aggregate_id"])


def health(client: TestClient, api: Api, role: Role = Role.AGENT) -> dict[str, Any]:
    response = client.get("/service-health", headers=api.as_(role))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def phone_opening(organisation_id: str, **overrides: Any) -> dict[str, Any]:
    return PHONE_REQUEST | {"organisation_id": organisation_id} | overrides


def cases_of(client: TestClient, api: Api, organisation_id: str) -> list[str]:
    listed = client.get(f"/organisations/{organisation_id}/cases", headers=api.as_(Role.AGENT))
    assert listed.status_code == 200, listed.text
    return [item["id"] for item in listed.json()["items"]]


def test_a_supervisor_declares_updates_and_closes_an_incident_on_the_dashboard(
    api: Api, client: TestClient
) -> None:
    incident_id = declare(client, api)

    in_force = health(client, api)["in_force"]
    assert [(i["id"], i["status"], i["summary"]) for i in in_force] == [
        (incident_id, "in_force", MAIL_OUTAGE["summary"])
    ]
    assert (in_force[0]["services"], in_force[0]["categories"]) == (
        ["Exchange Online"],
        ["technical"],
    )
    updated = client.patch(
        f"/service-incidents/{incident_id}",
        json={"summary": "Mail is delayed; a fix is being deployed.", "categories": []},
        headers=api.as_(Role.SUPERVISOR),
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["events"] == ["casebook.incident.updated.v1"]
    closed = client.post(
        f"/service-incidents/{incident_id}/close", json={}, headers=api.as_(Role.SUPERVISOR)
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["events"] == ["casebook.incident.closed.v1"]

    dashboard = health(client, api)
    assert dashboard["in_force"] == []
    [past] = dashboard["history"]
    assert (past["id"], past["status"], past["categories"]) == (incident_id, "closed", [])
    assert past["summary"] == "Mail is delayed; a fix is being deployed."
    assert past["ended_at"] is not None
    one = client.get(f"/service-incidents/{incident_id}", headers=api.as_(Role.AGENT)).json()
    assert one == past


def test_the_dashboard_lists_scheduled_incidents_apart_and_leaves_out_old_history(
    api: Api, client: TestClient
) -> None:
    now = datetime.now(UTC)
    planned = declare(client, api, started_at=(now + timedelta(days=1)).isoformat())
    old = declare(client, api, started_at=(now - timedelta(days=40)).isoformat())
    client.post(
        f"/service-incidents/{old}/close",
        json={"ended_at": (now - timedelta(days=31)).isoformat()},
        headers=api.as_(Role.SUPERVISOR),
    ).raise_for_status()

    dashboard = health(client, api)

    assert [i["id"] for i in dashboard["scheduled"]] == [planned]
    assert dashboard["scheduled"][0]["status"] == "scheduled"
    assert dashboard["in_force"] == [] and dashboard["history"] == []


def test_only_supervisors_declare_update_and_close_incidents(api: Api, client: TestClient) -> None:
    incident_id = declare(client, api)
    others = (Role.AGENT, Role.AUDITOR, Role.ANALYST, Role.ADMIN, Role.PORTAL)

    for role in others:
        for method, path, body in (
            ("POST", "/service-incidents", MAIL_OUTAGE),
            ("PATCH", f"/service-incidents/{incident_id}", {"summary": "Fixed, we think."}),
            ("POST", f"/service-incidents/{incident_id}/close", {}),
        ):
            refused = client.request(method, path, json=body, headers=api.as_(role))
            found = problem(refused, 403, "role-may-use-route")
            assert role.value in found["detail"], found

    assert [i["id"] for i in health(client, api)["in_force"]] == [incident_id]
    assert api.casebook.get_incident(uuid.UUID(incident_id)).version == 1  # nothing recorded


def test_an_incident_names_what_it_affects_and_tells_customers_what_happens(
    api: Api, client: TestClient
) -> None:
    as_supervisor = api.as_(Role.SUPERVISOR)

    nothing = client.post(
        "/service-incidents",
        json=MAIL_OUTAGE | {"services": [], "categories": []},
        headers=as_supervisor,
    )
    silent = client.post(
        "/service-incidents", json=MAIL_OUTAGE | {"summary": "  "}, headers=as_supervisor
    )

    found = problem(nothing, 422, "incident-names-what-it-affects")
    assert found["errors"][0]["field"] == "body.services"
    assert "at least one affected service or category" in found["detail"]
    found = problem(silent, 422, "incident-has-a-summary")
    assert found["errors"][0]["field"] == "body.summary"
    assert "summary customers will read" in found["detail"]
    assert health(client, api)["in_force"] == []


def test_a_closed_incident_is_final_and_an_update_must_change_something(
    api: Api, client: TestClient
) -> None:
    incident_id = declare(client, api)
    as_supervisor = api.as_(Role.SUPERVISOR)

    same = client.patch(
        f"/service-incidents/{incident_id}",
        json={"summary": MAIL_OUTAGE["summary"]},
        headers=as_supervisor,
    )
    found = problem(same, 409, "incident-update-changes-something")
    assert "current values" in found["detail"]
    client.post(
        f"/service-incidents/{incident_id}/close", json={}, headers=as_supervisor
    ).raise_for_status()
    update = client.patch(
        f"/service-incidents/{incident_id}", json={"summary": "Back"}, headers=as_supervisor
    )
    again = client.post(f"/service-incidents/{incident_id}/close", json={}, headers=as_supervisor)

    found = problem(update, 409, "closed-incidents-are-final")
    assert "declare a new one" in found["detail"]
    problem(again, 409, "closed-incidents-are-final")


def test_an_incident_ends_no_earlier_than_it_started(api: Api, client: TestClient) -> None:
    started = datetime.now(UTC) - timedelta(hours=2)
    incident_id = declare(client, api, started_at=started.isoformat())

    early = client.post(
        f"/service-incidents/{incident_id}/close",
        json={"ended_at": (started - timedelta(minutes=1)).isoformat()},
        headers=api.as_(Role.SUPERVISOR),
    )

    found = problem(early, 422, "incident-ends-after-it-starts")
    assert found["errors"] == [{"field": "body.ended_at", "message": found["detail"]}]
    assert [i["id"] for i in health(client, api)["in_force"]] == [incident_id]


def test_an_unknown_incident_is_not_found(api: Api, client: TestClient) -> None:
    nowhere = uuid.uuid4()

    for response in (
        client.get(f"/service-incidents/{nowhere}", headers=api.as_(Role.AGENT)),
        client.patch(
            f"/service-incidents/{nowhere}", json={"summary": "x"}, headers=api.as_(Role.SUPERVISOR)
        ),
        client.post(
            f"/service-incidents/{nowhere}/close", json={}, headers=api.as_(Role.SUPERVISOR)
        ),
    ):
        found = problem(response, 404, "incident-exists")
        assert found["detail"] == f"no service incident {nowhere}"


def test_an_opening_an_incident_may_explain_shows_it_first_and_files_nothing(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)
    incident_id = declare(client, api)

    shown = client.post("/cases", json=phone_opening(organisation_id), headers=api.as_(Role.AGENT))

    found = problem(shown, 409, "service-incident-shown-first")
    [incident] = found["incidents"]
    assert incident["id"] == incident_id
    assert incident["summary"] == MAIL_OUTAGE["summary"]
    assert (incident["services"], incident["categories"]) == (["Exchange Online"], ["technical"])
    assert datetime.fromisoformat(incident["started_at"]) <= datetime.now(UTC)
    assert "incident_acknowledged" in found["detail"]
    assert cases_of(client, api, organisation_id) == []


def test_confirming_the_incident_files_the_request_linked_to_it(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)
    incident_id = declare(client, api)

    opened = client.post(
        "/cases",
        json=phone_opening(organisation_id, incident_acknowledged=incident_id),
        headers=api.as_(Role.AGENT),
    )

    assert opened.status_code == 201, opened.text
    assert opened.json()["events"] == [
        "casebook.case.opened.v5",
        "casebook.case.linked_to_incident.v1",
    ]
    case_id = opened.json()["aggregate_id"]
    case = client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT)).json()
    assert case["incident_id"] == incident_id
    history = client.get(f"/cases/{case_id}/events", headers=api.as_(Role.AUDITOR)).json()
    link = history["events"][1]
    assert (link["type"], link["data"]["incident_id"]) == (
        "casebook.case.linked_to_incident.v1",
        incident_id,
    )
    assert link["actor"]["role"] == "agent"


def test_a_request_the_incidents_do_not_explain_goes_on_unlinked(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)
    declare(client, api)

    opened = client.post(
        "/cases",
        json=phone_opening(organisation_id, incident_unrelated=True),
        headers=api.as_(Role.AGENT),
    )
    both = client.post(
        "/cases",
        json=phone_opening(
            organisation_id, incident_unrelated=True, incident_acknowledged=str(uuid.uuid4())
        ),
        headers=api.as_(Role.AGENT),
    )

    assert opened.status_code == 201, opened.text
    assert opened.json()["events"] == ["casebook.case.opened.v5"]
    case = client.get(f"/cases/{opened.json()['aggregate_id']}", headers=api.as_(Role.AGENT))
    assert case.json()["incident_id"] is None
    found = problem(both, 422, "incident-answer-is-one-choice")
    assert found["errors"][0]["field"] == "body.incident_acknowledged"
    assert "not both" in found["detail"]


def test_only_incidents_in_force_for_the_category_or_the_named_service_are_shown(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    declare(client, api, categories=["technical"], services=[], started_at=later)
    mailbox = declare(client, api, categories=[], services=["Exchange Online"])
    closed = declare(client, api, categories=["billing"], services=[])
    client.post(
        f"/service-incidents/{closed}/close", json={}, headers=api.as_(Role.SUPERVISOR)
    ).raise_for_status()

    billing = client.post(
        "/cases",
        json=phone_opening(organisation_id, category="billing"),
        headers=api.as_(Role.AGENT),
    )
    technical = client.post(
        "/cases", json=phone_opening(organisation_id), headers=api.as_(Role.AGENT)
    )
    naming = client.post(
        "/cases",
        json=phone_opening(organisation_id, service="exchange online"),
        headers=api.as_(Role.AGENT),
    )

    assert billing.status_code == 201, billing.text
    assert technical.status_code == 201, technical.text
    found = problem(naming, 409, "service-incident-shown-first")
    assert [i["id"] for i in found["incidents"]] == [mailbox]


def test_an_incident_closed_after_it_was_shown_still_links_the_request(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)
    incident_id = declare(client, api)
    client.post(
        f"/service-incidents/{incident_id}/close", json={}, headers=api.as_(Role.SUPERVISOR)
    ).raise_for_status()

    opened = client.post(
        "/cases",
        json=phone_opening(organisation_id, incident_acknowledged=incident_id),
        headers=api.as_(Role.AGENT),
    )
    unknown = client.post(
        "/cases",
        json=phone_opening(organisation_id, incident_acknowledged=str(uuid.uuid4())),
        headers=api.as_(Role.AGENT),
    )

    assert opened.status_code == 201, opened.text
    assert opened.json()["events"][-1] == "casebook.case.linked_to_incident.v1"
    problem(unknown, 404, "incident-exists")


def test_the_portal_reads_service_health_and_is_shown_incidents_before_filing(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)
    incident_id = declare(client, api)
    request = ONLINE_REQUEST | {"organisation_id": organisation_id}
    portal = api.as_(Role.PORTAL)

    dashboard = health(client, api, Role.PORTAL)
    one = client.get(f"/service-incidents/{incident_id}", headers=portal)
    shown = client.post("/cases", json=request, headers=portal)
    opened = client.post(
        "/cases", json=request | {"incident_acknowledged": incident_id}, headers=portal
    )

    assert [i["id"] for i in dashboard["in_force"]] == [incident_id]
    assert one.status_code == 200 and one.json()["summary"] == MAIL_OUTAGE["summary"]
    assert [i["id"] for i in problem(shown, 409, "service-incident-shown-first")["incidents"]] == [
        incident_id
    ]
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["aggregate_id"]
    seen = client.get(f"/cases/{case_id}", headers=portal).json()
    assert (seen["view"], seen["incident_id"]) == ("customer", incident_id)
    timeline = client.get(f"/cases/{case_id}/timeline", headers=portal).json()["events"]
    assert [(e["what"], e["details"]) for e in timeline][-1] == (
        "linked_to_incident",
        {"incident_id": incident_id},
    )
    problem(
        client.get(f"/service-incidents/{uuid.uuid4()}", headers=portal), 404, "incident-exists"
    )


def test_the_portal_is_shown_no_incident_for_an_organisation_it_does_not_act_for(
    api: Api, client: TestClient
) -> None:
    globex = register_acme(client, api, name="Globex", admins=["gus"])
    declare(client, api)

    refused = client.post(
        "/cases", json=ONLINE_REQUEST | {"organisation_id": globex}, headers=api.as_(Role.PORTAL)
    )

    found = problem(refused, 422, "only-customer-admins-open-requests")
    assert "incidents" not in found


def test_staff_link_a_case_to_the_incident_it_is_about(api: Api, client: TestClient) -> None:
    organisation_id = register_acme(client, api)
    case_id = open_case(client, api, organisation_id)
    incident_id = declare(client, api)

    linked = client.put(
        f"/cases/{case_id}/incident", json={"incident_id": incident_id}, headers=api.as_(Role.AGENT)
    )
    again = client.put(
        f"/cases/{case_id}/incident", json={"incident_id": incident_id}, headers=api.as_(Role.AGENT)
    )
    unknown = client.put(
        f"/cases/{case_id}/incident",
        json={"incident_id": str(uuid.uuid4())},
        headers=api.as_(Role.SUPERVISOR),
    )
    by_portal = client.put(
        f"/cases/{case_id}/incident",
        json={"incident_id": incident_id},
        headers=api.as_(Role.PORTAL),
    )

    assert linked.status_code == 200, linked.text
    assert linked.json()["events"] == ["casebook.case.linked_to_incident.v1"]
    assert client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT)).json()["incident_id"] == (
        incident_id
    )
    found = problem(again, 409, "case-linked-to-incident-once")
    assert incident_id in found["detail"]
    problem(unknown, 404, "incident-exists")
    problem(by_portal, 403, "role-may-use-route")


def test_the_queue_shows_the_link_and_the_report_counts_cases_per_incident(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    organisation_id = register_acme(client, api)
    incident_id = declare(client, api)
    linked = [
        client.post(
            "/cases",
            json=phone_opening(organisation_id, incident_acknowledged=incident_id),
            headers=api.as_(Role.AGENT),
        ).json()["aggregate_id"]
        for _ in range(2)
    ]
    unlinked = open_case(client, api, organisation_id, incident_unrelated=True)
    client.post(
        f"/service-incidents/{incident_id}/close", json={}, headers=api.as_(Role.SUPERVISOR)
    ).raise_for_status()
    # Every stored event, the incident's too, as the tracker consumes them.
    project(clean_database, stored_envelopes(api.casebook))

    queue = client.get("/queue", headers=api.as_(Role.AGENT)).json()["items"]
    report = client.get("/reports/sla-compliance", headers=api.as_(Role.SUPERVISOR)).json()

    links = {item["case_id"]: item["incident_id"] for item in queue}
    assert links == {linked[0]: incident_id, linked[1]: incident_id, unlinked: None}
    assert report["cases_by_incident"] == {incident_id: 2}
    assert {"overall", "by_severity", "by_category", "closures"} <= set(report)


def test_openings_written_in_one_batch_all_see_the_incident_in_force(
    api: Api, client: TestClient
) -> None:
    organisation_id = uuid.UUID(register_acme(client, api))
    incident_id = uuid.UUID(declare(client, api))
    on_phone = c.CommandContext(Actor("bob", Role.AGENT, Channel.PHONE))

    def opening(acknowledged: uuid.UUID | None) -> c.OpenRequest:
        return c.OpenRequest(
            organisation_id=organisation_id,
            requester_id="ada",
            category=Category.TECHNICAL,
            title="Mail is slow",
            description="",
            contact_phone=REGISTERED_PHONE,
            contact_email=REGISTERED_EMAIL,
            preferred_contact=ContactKind.EMAIL,
            caller_phone=REGISTERED_PHONE,
            incident_acknowledged=acknowledged,
        )

    futures = api.casebook.execute_together(
        [(opening(incident_id if n % 2 else None), on_phone) for n in range(6)]
    )

    shown = [f.exception() for f in futures if f.exception() is not None]
    linked = [f.result() for f in futures if f.exception() is None]
    assert len(shown) == 3 and all(isinstance(e, IncidentShownFirst) for e in shown)
    assert len(linked) == 3
    assert all(r.events[-1] == "casebook.case.linked_to_incident.v1" for r in linked)
    assert {api.casebook.get_case(r.aggregate_id).incident_id for r in linked} == {incident_id}


def test_a_verified_caller_shown_an_incident_first_can_still_open_with_their_verification(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    organisation_id = register_acme(client, api)
    declare(client, api)
    requested = request_code(client, api, organisation_id)
    verification_id = requested.json()["verification_id"]
    code = last_code(clean_database, organisation_id)
    assert confirm(client, api, organisation_id, verification_id, code).status_code == 200
    call = phone_opening(
        organisation_id, caller_phone=UNREGISTERED_PHONE, verification_id=verification_id
    )

    shown = client.post("/cases", json=call, headers=api.as_(Role.AGENT))
    filed = client.post(
        "/cases", json=call | {"incident_unrelated": True}, headers=api.as_(Role.AGENT)
    )

    problem(shown, 409, "service-incident-shown-first")
    # The refused opening used the verification only in memory: it opens the case now.
    assert filed.status_code == 201, filed.text
