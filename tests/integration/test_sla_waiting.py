"""The expected waiting time over HTTP: opening a case answers with the first response it
may expect, estimated from a seeded queue and known first-response times, records it on
the opening, and the compliance report compares that promise with the outcome."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from casebook import commands as c
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Agreement, Category, Role, Severity
from tests.integration.api_support import Api, running_api
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.sla_support import assess, project, rows, stored_envelopes
from tests.integration.write_side import (
    EMAIL,
    PHONE,
    as_agent,
    open_request,
    register_organisation,
)

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

# Severity B of technical requests runs 09:00-24:00 Shanghai (UTC+8) every day.
MONDAY_9 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def shanghai_monday(hour: int, minute: int = 0) -> datetime:
    return MONDAY_9 + timedelta(hours=hour - 9, minutes=minute)


class Clock:
    def __init__(self) -> None:
        self.now = MONDAY_9

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clean_database: Database, clock: Clock) -> Iterator[Api]:
    # One day of first responses: the window is Sunday 16:00 to Monday 16:00 Shanghai,
    # 8 + 7 = 15 business hours on the B calendar.
    settings = Settings(database_url=clean_database.url, waiting_window_days=1)
    with running_api(clean_database, settings=settings, clock=clock) as api:
        yield api


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


def seed(api: Api, clock: Clock, database: Database, organisation: str) -> None:
    """Four technical B cases opened at 09:00 and answered after 1, 2, 3 and 5 business
    hours (median 2.5 h); three opened at 15:00 still waiting, one billing case too."""
    casebook, org = api.casebook, UUID(organisation)
    answered = [open_request(casebook, org) for _ in range(4)]
    clock.now = shanghai_monday(9, 30)
    for case_id in answered:
        assess(casebook, case_id, Severity.B)
    for case_id, hour in zip(answered, (10, 11, 12, 14), strict=True):
        clock.now = shanghai_monday(hour)
        casebook.execute(c.Respond(case_id, "Looking into it"), as_agent())
    clock.now = shanghai_monday(15)
    for _ in range(3):
        open_request(casebook, org)
    open_request(casebook, org, category=Category.BILLING)
    project(database, stored_envelopes(casebook))


def open_now(client: TestClient, api: Api, organisation: str) -> dict[str, Any]:
    response = client.post(
        "/cases",
        json={
            "organisation_id": organisation,
            "requester_id": "ada",
            "channel": "phone",
            "caller_phone": PHONE,
            "category": "technical",
            "title": "Calendar sync fails",
            "contact_phone": PHONE,
            "contact_email": EMAIL,
        },
        headers=api.as_(Role.AGENT),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def standard_acme(client: TestClient, api: Api) -> str:
    """Acme on a standard agreement: its technical requests triage at severity B."""
    return str(register_organisation(api.casebook, agreement=Agreement.STANDARD))


def test_opening_answers_with_the_wait_estimated_from_the_queue_and_recent_responses(
    api: Api, client: TestClient, clock: Clock, clean_database: Database
) -> None:
    organisation = standard_acme(client, api)
    seed(api, clock, clean_database, organisation)
    clock.now = shanghai_monday(16)
    opened = open_now(client, api, organisation)
    expected = opened["expected_response"]
    # 4 first responses in 15 business hours, median 2.5 h: usually 4/15 * 2.5 = 2/3 of a
    # case waits. Three wait now: 2.5 h * (3 + 1) / (2/3 + 1) = 6 h, Monday 22:00 Shanghai.
    assert datetime.fromisoformat(expected["at"]) == shanghai_monday(22)
    assert expected["business_seconds"] == 6 * 3600
    assert (expected["method"], expected["severity"]) == ("recent_median", "B")
    assert (expected["calendar"], expected["window_days"]) == ("extended_daily", 1)
    assert (expected["queue_ahead"], expected["sample_size"]) == (3, 4)
    assert expected["median_seconds"] == 2.5 * 3600
    assert expected["rate_per_business_hour"] == pytest.approx(4 / 15)
    assert "3 case(s) ahead" in expected["basis"]
    # Recorded on the opening, and kept by the SLA tracker with the case.
    case_id = opened["aggregate_id"]
    history = client.get(f"/cases/{case_id}/events", headers=api.as_(Role.AUDITOR)).json()
    [first, *_] = history["events"]
    assert first["type"] == "casebook.case.opened.v5"
    assert datetime.fromisoformat(first["data"]["expected_response_at"]) == shanghai_monday(22)
    assert first["data"]["waiting_estimate"]["business_seconds"] == 6 * 3600
    project(clean_database, stored_envelopes(api.casebook)[-1:])
    assert rows(
        clean_database,
        "SELECT promised_response_at FROM casebook_sla_cases WHERE case_id = %s",
        case_id,
    ) == [(shanghai_monday(22),)]


def test_with_no_recent_first_response_the_promise_is_the_policy_target(
    api: Api, client: TestClient, clock: Clock
) -> None:
    organisation = standard_acme(client, api)
    clock.now = shanghai_monday(16)
    expected = open_now(client, api, organisation)["expected_response"]
    # Severity B: one business day of 15 hours, 8 on Monday and 7 on Tuesday.
    assert datetime.fromisoformat(expected["at"]) == shanghai_monday(16) + timedelta(days=1)
    assert (expected["method"], expected["business_seconds"]) == ("policy_target", 15 * 3600)
    assert expected["sample_size"] == 0 and expected["queue_ahead"] == 0


def test_a_retried_opening_answers_with_the_promise_first_made(
    api: Api, client: TestClient, clock: Clock, clean_database: Database
) -> None:
    organisation = standard_acme(client, api)
    seed(api, clock, clean_database, organisation)
    clock.now = shanghai_monday(16)
    body = {
        "organisation_id": organisation,
        "requester_id": "ada",
        "channel": "phone",
        "caller_phone": PHONE,
        "category": "technical",
        "title": "Calendar sync fails",
        "contact_phone": PHONE,
        "contact_email": EMAIL,
    }
    headers = api.as_(Role.AGENT, **{"Idempotency-Key": "open-1"})
    first = client.post("/cases", json=body, headers=headers)
    assert first.status_code == 201, first.text
    # The queue and the clock moved on: the retry is still the same request.
    project(clean_database, stored_envelopes(api.casebook))
    clock.now = shanghai_monday(17)
    retry = client.post("/cases", json=body, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()


def test_the_compliance_report_compares_promise_and_first_response(
    api: Api, client: TestClient, clock: Clock, clean_database: Database
) -> None:
    organisation = standard_acme(client, api)
    seed(api, clock, clean_database, organisation)
    clock.now = shanghai_monday(16)
    # Both promised Monday 22:00 (the first is not in the tracker when the second opens).
    kept, broken = (open_now(client, api, organisation)["aggregate_id"] for _ in range(2))
    for case_id, hour in ((kept, 20), (broken, 23)):
        clock.now = shanghai_monday(hour)
        assess(api.casebook, UUID(case_id), Severity.B)
        api.casebook.execute(c.Respond(UUID(case_id), "On it"), as_agent())
    project(clean_database, stored_envelopes(api.casebook))
    report = client.get(
        "/reports/sla-compliance",
        params={"since": MONDAY_9.isoformat(), "until": (MONDAY_9 + timedelta(days=1)).isoformat()},
        headers=api.as_(Role.SUPERVISOR),
    ).json()
    # Answered 2 h early and 1 h late: one promise of two kept, median error -30 minutes.
    # The four seeded cases, opened with no promise, are not counted.
    promises = {"promised": 2, "kept": 1, "kept_rate": 0.5, "median_error_seconds": -1800.0}
    assert report["promises"] == promises
    assert report["promises_by_period"] == [promises | {"period": "2025-03-01T00:00:00Z"}]
    assert report["overall"]["met"] == 6  # the clocks still count as before
