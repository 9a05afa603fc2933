"""The customer portal acts for one customer admin per request, on that admin's
organisation only: opening online, replying, reading as the customer, answering surveys."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.portal import ON_BEHALF_OF
from api.roles import ROLE_MATRIX, endpoints
from casebook.database import Database
from casebook.store import CasebookRecorder
from domain.values import Role
from tests.integration.api_support import (
    ACME,
    PHONE_REQUEST,
    REGISTERED_EMAIL,
    REGISTERED_PHONE,
    Api,
    open_case,
    register_acme,
    running_api,
)

pytestmark = pytest.mark.integration

ONLINE_REQUEST: dict[str, Any] = {
    "requester_id": "ada",
    "channel": "online",
    "category": "technical",
    "title": "Calendar sharing fails",
    "description": "Since Monday nobody can share calendars.",
    "contact_phone": REGISTERED_PHONE,
    "contact_email": REGISTERED_EMAIL,
}
GLOBEX_SECRET = "Globex merger mailboxes"


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


def portal(api: Api, customer: str = "ada", **extra: str) -> dict[str, str]:
    return api.as_(Role.PORTAL, **{ON_BEHALF_OF: customer}, **extra)


def problem(response: Any, status: int, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["rule"] == rule, body
    return body


def test_the_portal_opens_a_request_online_as_the_admin_it_acts_for(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)

    opened = client.post(
        "/cases", json=ONLINE_REQUEST | {"organisation_id": organisation_id}, headers=portal(api)
    )

    assert opened.status_code == 201, opened.text
    case_id = opened.json()["aggregate_id"]
    history = client.get(f"/cases/{case_id}/events", headers=api.as_(Role.AUDITOR)).json()
    opening = history["events"][0]
    assert opening["actor"] == {
        "principal_id": "ada",
        "role": "customer_admin",
        "channel": "online",
    }
    # The audit trail names both: the admin as the actor, the portal's key as the origin.
    recorder = api.casebook.store.recorder
    assert isinstance(recorder, CasebookRecorder)
    [origin] = [
        n.origin for n in recorder.select_with_origins(1, 100) if str(n.originator_id) == case_id
    ]
    [portal_key] = [k for k in api.keys.list() if k.role.value == "portal"]
    assert origin is not None and origin.api_key_id == portal_key.key_id


def test_a_customer_who_is_not_an_admin_gets_the_policys_refusal_naming_no_organisation(
    api: Api, client: TestClient
) -> None:
    organisation_id = register_acme(client, api)

    refused = client.post(
        "/cases",
        json=ONLINE_REQUEST | {"organisation_id": organisation_id, "requester_id": "bob"},
        headers=portal(api, "bob"),
    )
    elsewhere = client.post(
        "/cases",
        json=ONLINE_REQUEST | {"organisation_id": str(uuid.uuid4()), "requester_id": "bob"},
        headers=portal(api, "bob"),
    )

    body = problem(refused, 422, "only-customer-admins-open-requests")
    assert "ask your organisation's administrator" in body["detail"]
    assert "community forums" in body["detail"]
    assert ACME["name"] not in refused.text
    # An organisation that does not exist gets the very same answer.
    assert problem(elsewhere, 422, "only-customer-admins-open-requests") == body | {
        "request_id": elsewhere.json()["request_id"]
    }


def test_a_portal_request_names_exactly_one_customer(api: Api, client: TestClient) -> None:
    organisation_id = register_acme(client, api)
    body = ONLINE_REQUEST | {"organisation_id": organisation_id}

    missing = client.post("/cases", json=body, headers=api.as_(Role.PORTAL, **{ON_BEHALF_OF: ""}))
    spaced = client.post("/cases", json=body, headers=portal(api, "ada lovelace"))

    for response in (missing, spaced):
        found = problem(response, 422, "portal-acts-for-one-customer")
        assert found["errors"][0]["field"] == f"header.{ON_BEHALF_OF}"
        assert "signed-in customer admin" in found["detail"]


def test_only_the_portal_may_act_for_a_customer(api: Api, client: TestClient) -> None:
    organisation_id = register_acme(client, api)

    staff = client.post(
        "/cases",
        json=PHONE_REQUEST | {"organisation_id": organisation_id},
        headers=api.as_(Role.AGENT, **{ON_BEHALF_OF: "ada"}),
    )

    found = problem(staff, 403, "only-the-portal-acts-for-customers")
    assert "agent keys act as themselves" in found["detail"]


@pytest.mark.parametrize(
    ("change", "rule", "field", "says"),
    [
        (
            {"channel": "phone", "caller_phone": REGISTERED_PHONE},
            "portal-opens-online",
            "body.channel",
            "send channel `online`",
        ),
        (
            {"requester_id": "ada2"},
            "portal-opens-for-its-customer",
            "body.requester_id",
            "the requester must be ada",
        ),
    ],
)
def test_the_portal_opens_online_for_its_own_customer_only(
    api: Api, client: TestClient, change: dict[str, str], rule: str, field: str, says: str
) -> None:
    organisation_id = register_acme(client, api, admins=["ada", "ada2"])

    refused = client.post(
        "/cases",
        json=ONLINE_REQUEST | {"organisation_id": organisation_id} | change,
        headers=portal(api),
    )

    found = problem(refused, 422, rule)
    assert found["errors"][0]["field"] == field
    assert says in found["detail"]


def test_a_customer_reply_withdraws_the_unresponsive_record_a_downgrade_needs(
    api: Api, client: TestClient
) -> None:
    case_id = open_case(client, api, register_acme(client, api))
    agent = api.as_(Role.AGENT)
    assert (
        client.post(f"/cases/{case_id}/severity", json={"severity": "B"}, headers=agent).status_code
        == 200
    )
    asked = {"requested": "the error log", "asked_at": "2026-01-05T09:00:00+00:00"}
    assert (
        client.post(f"/cases/{case_id}/unresponsive", json=asked, headers=agent).status_code == 200
    )

    reply = client.post(
        f"/cases/{case_id}/notes", json={"text": "Log attached."}, headers=portal(api)
    )
    downgrade = client.post(
        f"/cases/{case_id}/downgrades", json={"severity": "C", "reason": "no log"}, headers=agent
    )

    assert reply.status_code == 200, reply.text
    problem(downgrade, 409, "downgrade-needs-unresponsive-customer")
    case = client.get(f"/cases/{case_id}", headers=portal(api)).json()
    assert [(n["by"], n["text"]) for n in case["notes"]] == [("ada", "Log attached.")]


def test_the_customer_sees_the_case_without_internal_notes_or_agent_names(
    api: Api, client: TestClient
) -> None:
    case_id = open_case(client, api, register_acme(client, api))
    agent = api.as_(Role.AGENT)
    for path, body in (
        ("agent", {"agent_id": api.principals[Role.AGENT]}),
        ("notes", {"text": "Customer seems to use an old client", "visibility": "internal"}),
        ("notes", {"text": "We are looking at it", "visibility": "customer"}),
        ("severity", {"severity": "B"}),
        ("responses", {"message_summary": "Please update your client"}),
    ):
        method = client.put if path == "agent" else client.post
        assert method(f"/cases/{case_id}/{path}", json=body, headers=agent).status_code == 200

    case = client.get(f"/cases/{case_id}", headers=portal(api))
    timeline = client.get(f"/cases/{case_id}/timeline", headers=portal(api))

    assert case.status_code == timeline.status_code == 200
    shown = case.json()
    assert shown["view"] == "customer" and shown["severity"] == "B"
    assert [n["text"] for n in shown["notes"]] == ["We are looking at it"]
    assert {
        "assigned_agent",
        "policy_version",
        "opened_by",
        "severity_history",
    } & shown.keys() == set()
    events = timeline.json()["events"]
    assert [e["what"] for e in events] == ["opened", "note_added", "severity_assigned", "responded"]
    assert {e["by"] for e in events[1:]} == {"support"}
    for text in (api.principals[Role.AGENT], "old client", "internal"):
        assert text not in case.text and text not in timeline.text


def test_the_customer_answers_the_satisfaction_survey_once(api: Api, client: TestClient) -> None:
    case_id = open_case(client, api, register_acme(client, api))
    agent = api.as_(Role.AGENT)
    for path, body in (
        ("severity", {"severity": "C"}),
        ("responses", {"message_summary": "Fixed the MX record"}),
        ("resolution", {"reason": "fixed", "resolution": "MX record corrected"}),
    ):
        assert client.post(f"/cases/{case_id}/{path}", json=body, headers=agent).status_code == 200

    answer = {"score": 4, "comment": "Quick"}
    first = client.post(f"/cases/{case_id}/satisfaction", json=answer, headers=portal(api))
    second = client.post(f"/cases/{case_id}/satisfaction", json=answer, headers=portal(api))

    assert first.status_code == 200, first.text
    problem(second, 409, "satisfaction-recorded-once")
    assert client.get(f"/cases/{case_id}", headers=portal(api)).json()["satisfaction_score"] == 4


def test_the_portals_reads_name_the_customer_in_the_access_records(
    api: Api, client: TestClient
) -> None:
    case_id = open_case(client, api, register_acme(client, api))

    assert client.get(f"/cases/{case_id}", headers=portal(api)).status_code == 200

    records = client.get(
        "/audit/access", params={"case_id": case_id}, headers=api.as_(Role.AUDITOR)
    )
    [record] = [r for r in records.json()["items"] if r["role"] == "portal"]
    assert record["on_behalf_of"] == "ada"
    assert record["principal_id"] == api.principals[Role.PORTAL]


# Request bodies that are valid for each route the portal may call, so that a refusal can
# only come from whose object it is.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "open_case": ONLINE_REQUEST,
    "add_note": {"text": "Any news?"},
    "record_satisfaction": {"score": 5},
}


# Portal routes that read what belongs to no organisation (service incidents, published to
# every customer): tests/integration/test_service_health.py covers them.
NO_ORGANISATIONS_OBJECTS = ("get_incident", "service_health")


def test_the_portal_acting_for_one_organisation_never_reaches_anothers_objects(
    api: Api, client: TestClient
) -> None:
    acme = register_acme(client, api)
    globex = register_acme(client, api, name="Globex", admins=["gus"])
    globex_case = open_case(
        client, api, globex, requester_id="gus", title=GLOBEX_SECRET, description=GLOBEX_SECRET
    )
    ours = {"organisation_id": acme}
    theirs = {"organisation_id": globex, "case_id": globex_case}
    made_up = {"organisation_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4())}
    portal_routes = [
        e for e in endpoints(api.app.routes) if Role.PORTAL in ROLE_MATRIX.get(e.name, ())
    ]
    assert {e.name for e in portal_routes} == {
        "get_organisation",
        "list_organisation_cases",
        "open_case",
        "get_case",
        "get_case_timeline",
        "add_note",
        "record_satisfaction",
        "list_support_lines",  # the policy's public numbers: no organisation's object
        *NO_ORGANISATIONS_OBJECTS,
    }, "a new portal route: add it to this matrix"
    portal_routes = [
        e for e in portal_routes if "{" in e.path or e.name == "open_case"
    ]  # the routes that name an organisation's object

    def call(endpoint: Any, ids: dict[str, str]) -> Any:
        path = re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], endpoint.path)
        body = VALID_BODIES.get(endpoint.name, {}) | (
            {"organisation_id": ids["organisation_id"]} if endpoint.name == "open_case" else {}
        )
        return client.request(
            endpoint.method,
            path,
            json=body if endpoint.method != "GET" else None,
            headers=portal(api),
        )

    for endpoint in portal_routes:
        if endpoint.name in NO_ORGANISATIONS_OBJECTS:
            continue
        against_theirs, against_nothing = call(endpoint, theirs), call(endpoint, made_up)
        assert GLOBEX_SECRET not in against_theirs.text and "Globex" not in against_theirs.text
        expected = 422 if endpoint.name == "open_case" else 404
        assert against_theirs.status_code == expected, (endpoint.name, against_theirs.text)
        # Word for word what an id that exists nowhere gets, but for the id itself.
        assert strip_ids(against_theirs.json(), theirs) == strip_ids(
            against_nothing.json(), made_up
        )
    # ... while the same calls on its own organisation get through.
    assert (
        call(
            next(e for e in portal_routes if e.name == "list_organisation_cases"), ours
        ).status_code
        == 200
    )


def strip_ids(body: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    text = repr({k: v for k, v in body.items() if k != "request_id"})
    for value in ids.values():
        text = text.replace(value, "<id>")
    return {"body": text}


def test_a_partner_customer_is_offered_the_partner_first_and_may_go_on_to_us(
    api: Api, client: TestClient
) -> None:
    partnered = {"purchase_channel": "partner", "partner_name": "Resell Ltd"}
    organisation_id = register_acme(client, api, **partnered, partner_contact="help@resell.example")
    body = ONLINE_REQUEST | {"organisation_id": organisation_id}
    stored = api.casebook.store.recorder.max_notification_id()

    offered = client.post("/cases", json=body, headers=portal(api))
    filed = api.casebook.store.recorder.max_notification_id()
    went_on = client.post(
        "/cases", json=body | {"partner_contact_acknowledged": True}, headers=portal(api)
    )

    found = problem(offered, 409, "partner-customers-see-partner-contact-first")
    assert "partner_contact_acknowledged true" in found["detail"]
    assert found["partner"] == {"name": "Resell Ltd", "contact": "help@resell.example"}
    assert filed == stored  # nothing was filed
    assert went_on.status_code == 201, went_on.text
    case_id = went_on.json()["aggregate_id"]
    opening = client.get(f"/cases/{case_id}/events", headers=api.as_(Role.AUDITOR)).json()
    assert opening["events"][0]["data"]["partner_contact_acknowledged"] is True
