"""Verifying a caller on an unregistered number by a one-time code, through the HTTP API (§2).

The embedded notifier keeps each code in `casebook_notifications`, where the tests read
it as the organisation's mailbox would; the write side runs on a clock the tests move.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
import structlog
from fastapi.testclient import TestClient

from casebook.database import Database
from casebook.settings import Settings
from domain.organisations.verification import code_digest
from domain.values import Role
from tests.integration.api_support import REGISTERED_PHONE, Api, register_acme, running_api
from tests.integration.conftest import CliRunner
from tests.integration.verification_support import (
    Clock,
    confirm,
    last_code,
    open_for_caller,
    request_code,
    standing,
    wrong,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def api(database: Database, clock: Clock) -> Iterator[Api]:
    with running_api(database, settings=Settings(database_url=database.url), clock=clock) as api:
        yield api


@pytest.fixture(scope="module")
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


@pytest.fixture
def acme(api: Api, client: TestClient) -> str:
    return register_acme(client, api)


def refused(response: httpx.Response, status: int, rule: str, text: str) -> dict[str, object]:
    """The problem body, after checking its status, rule and that its detail says `text`."""
    assert response.status_code == status, response.text
    problem: dict[str, object] = response.json()
    assert problem["rule"] == rule and text in str(problem["detail"]), problem
    assert response.headers["Content-Type"] == "application/problem+json"
    return problem


def organisation_events(api: Api, organisation_id: str) -> list[str]:
    return [type(e).__name__ for e in api.casebook.store.events.get(UUID(organisation_id))]


def test_a_caller_who_reads_back_the_code_gets_their_case_opened(
    api: Api, client: TestClient, acme: str, database: Database, clock: Clock
) -> None:
    refused(
        open_for_caller(client, api, acme, None),
        422,
        "unregistered-callers-verify-pin",
        "one-time code",
    )
    sent = request_code(client, api, acme)
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert (body["channel"], body["sent_to"]) == ("email", "i***@acme.example")
    assert body["expires_at"] == (clock.now + timedelta(minutes=10)).isoformat().replace(
        "+00:00", "Z"
    )
    assert sent.headers["Location"].endswith(body["verification_id"])
    code = last_code(database, acme)
    assert code not in sent.text
    pending = standing(client, api, acme, body["verification_id"])
    assert (pending["state"], pending["attempts_left"], pending["sent_to"]) == (
        "pending",
        5,
        "i***@acme.example",
    )

    verified = confirm(client, api, acme, body["verification_id"], f"{code[:3]} {code[3:]}")
    assert verified.status_code == 200, verified.text
    assert verified.json()["verified"] is True

    opened = open_for_caller(client, api, acme, body["verification_id"])
    assert opened.status_code == 201, opened.text
    [opening, *_] = api.casebook.store.events.get(UUID(opened.json()["aggregate_id"]))
    assert opening.verification_id == UUID(body["verification_id"])
    assert organisation_events(api, acme)[-3:] == [
        "CallerVerificationRequested",
        "CallerVerified",
        "CallerVerificationUsed",
    ]
    used = standing(client, api, acme, body["verification_id"])
    assert (used["state"], used["case_id"]) == ("used", opened.json()["aggregate_id"])
    assert code not in json.dumps(used)


def test_the_code_goes_to_the_registered_contact_only(
    api: Api, client: TestClient, acme: str, database: Database
) -> None:
    problem = refused(
        request_code(client, api, acme, send_to="attacker@evil.example"),
        422,
        "pin-goes-to-registered-contact",
        "registered contact",
    )
    assert problem["errors"] == [{"field": "body.send_to", "message": problem["detail"]}]
    with psycopg.connect(database.url) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM casebook_notifications WHERE organisation_id = %s", (acme,)
        ).fetchone()
    assert kept == (0,), "a refused request sends nothing"
    by_phone = request_code(client, api, acme, send_to=REGISTERED_PHONE)
    assert by_phone.status_code == 201, by_phone.text
    assert (by_phone.json()["channel"], by_phone.json()["sent_to"]) == ("phone", "***567")
    with psycopg.connect(database.url) as conn:
        recipient = conn.execute(
            "SELECT kind, recipient FROM casebook_notifications WHERE organisation_id = %s", (acme,)
        ).fetchone()
    assert recipient == ("phone", "+48221234567")


def test_a_registered_number_needs_no_code(api: Api, client: TestClient, acme: str) -> None:
    problem = refused(
        request_code(client, api, acme, caller_phone=REGISTERED_PHONE),
        422,
        "registered-callers-need-no-pin",
        "no verification code is needed",
    )
    assert problem["errors"] == [{"field": "body.caller_phone", "message": problem["detail"]}]


def test_a_wrong_code_is_refused_counted_and_leaves_the_right_one_usable(
    api: Api, client: TestClient, acme: str, database: Database
) -> None:
    verification_id = request_code(client, api, acme).json()["verification_id"]
    code = last_code(database, acme)
    problem = refused(
        confirm(client, api, acme, verification_id, wrong(code)),
        422,
        "verification-code-matches",
        "4 attempt(s) left",
    )
    assert problem["errors"] == [{"field": "body.code", "message": problem["detail"]}]
    assert organisation_events(api, acme)[-1] == "CallerVerificationFailed"
    assert confirm(client, api, acme, verification_id, code).status_code == 200


def test_five_wrong_codes_lock_the_verification(
    api: Api, client: TestClient, acme: str, database: Database
) -> None:
    verification_id = request_code(client, api, acme).json()["verification_id"]
    code = last_code(database, acme)
    for left in (4, 3, 2, 1):
        refused(
            confirm(client, api, acme, verification_id, wrong(code)),
            422,
            "verification-code-matches",
            f"{left} attempt(s) left",
        )
    refused(
        confirm(client, api, acme, verification_id, wrong(code)),
        409,
        "verification-attempts-exhausted",
        "locked",
    )
    assert organisation_events(api, acme)[-2:] == [
        "CallerVerificationFailed",
        "CallerVerificationLocked",
    ]
    locked = standing(client, api, acme, verification_id)
    assert (locked["state"], locked["attempts_left"]) == ("locked", 0)
    refused(
        confirm(client, api, acme, verification_id, code),
        409,
        "verification-attempts-exhausted",
        "send a new code",
    )
    refused(
        open_for_caller(client, api, acme, verification_id),
        422,
        "unregistered-callers-verify-pin",
        "one-time code",
    )


def test_a_code_is_valid_for_ten_minutes_then_expires(
    api: Api, client: TestClient, acme: str, database: Database, clock: Clock
) -> None:
    in_time = request_code(client, api, acme).json()["verification_id"]
    in_time_code = last_code(database, acme)
    late = request_code(client, api, acme).json()["verification_id"]
    late_code = last_code(database, acme)
    clock.advance(minutes=10)
    assert confirm(client, api, acme, in_time, in_time_code).status_code == 200
    clock.advance(seconds=1)
    refused(
        confirm(client, api, acme, late, late_code),
        409,
        "verification-code-expired",
        "send a new code",
    )
    assert organisation_events(api, acme)[-1] == "CallerVerificationExpired"
    refused(
        confirm(client, api, acme, late, late_code), 409, "verification-code-expired", "expired"
    )
    assert organisation_events(api, acme)[-1] == "CallerVerificationExpired", "recorded once"
    assert standing(client, api, acme, late)["state"] == "expired"
    assert standing(client, api, acme, in_time)["state"] == "verified"
    refused(
        open_for_caller(client, api, acme, in_time),
        422,
        "unregistered-callers-verify-pin",
        "one-time code",
    )


def test_a_used_code_and_a_used_verification_cannot_be_reused(
    api: Api, client: TestClient, acme: str, database: Database
) -> None:
    verification_id = request_code(client, api, acme).json()["verification_id"]
    code = last_code(database, acme)
    assert confirm(client, api, acme, verification_id, code).status_code == 200
    refused(
        confirm(client, api, acme, verification_id, code),
        409,
        "verification-already-completed",
        "used once",
    )
    assert open_for_caller(client, api, acme, verification_id).status_code == 201
    problem = refused(
        open_for_caller(client, api, acme, verification_id),
        409,
        "verification-opens-one-case",
        "send a new code",
    )
    assert problem["errors"] == [{"field": "body.verification_id", "message": problem["detail"]}]


def test_an_unknown_verification_is_not_found(api: Api, client: TestClient, acme: str) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    refused(confirm(client, api, acme, unknown, "123456"), 404, "verification-not-found", "No")
    read = client.get(
        f"/organisations/{acme}/caller-verifications/{unknown}", headers=api.as_(Role.AGENT)
    )
    refused(read, 404, "verification-not-found", "No verification")


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ANALYST, Role.ADMIN])
def test_only_agents_and_supervisors_send_and_check_codes(
    api: Api, client: TestClient, acme: str, database: Database, role: Role
) -> None:
    refused(request_code(client, api, acme, role=role), 403, "role-may-use-route", "")
    sent = request_code(client, api, acme, role=Role.SUPERVISOR)
    assert sent.status_code == 201, sent.text
    verification_id, code = sent.json()["verification_id"], last_code(database, acme)
    refused(confirm(client, api, acme, verification_id, code, role), 403, "role-may-use-route", "")
    assert confirm(client, api, acme, verification_id, code, Role.SUPERVISOR).status_code == 200


def test_no_code_or_digest_reaches_the_logs(
    api: Api,
    client: TestClient,
    acme: str,
    database: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logged:
        secrets: list[str] = []
        for _ in range(2):
            verification_id = request_code(client, api, acme).json()["verification_id"]
            code = last_code(database, acme)
            secrets += [code, code_digest(UUID(verification_id), code)]
            confirm(client, api, acme, verification_id, wrong(code))
            confirm(client, api, acme, verification_id, code)
            open_for_caller(client, api, acme, verification_id)
    text = json.dumps(logged, default=str) + caplog.text
    assert logged or caplog.records, "something was logged to scan"
    for secret in secrets:
        assert secret not in text
    with psycopg.connect(database.url) as conn:
        kept = [
            json.dumps(row, default=str)
            for table in ("casebook_idempotency", "casebook_command_origins", "casebook_case_index")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall()
        ]
    for secret in secrets:
        assert not any(secret in row for row in kept)


def test_notifications_list_shows_the_message_that_would_have_gone_out(
    api: Api, client: TestClient, acme: str, database: Database, cli: CliRunner
) -> None:
    request_code(client, api, acme)
    code = last_code(database, acme)
    shown = cli("notifications", "list", "--organisation", acme, db=database)
    assert shown.code == 0, shown.stderr
    first, subject, message = shown.stdout.splitlines()
    assert first.endswith(f"{acme}  email  it@acme.example")
    assert subject.strip() == "Your Acme support verification code"
    assert code in message and "10 minutes" in message
    nothing = cli("notifications", "list", "--organisation", str(uuid4()), db=database)
    assert (nothing.code, nothing.stdout, nothing.stderr.strip()) == (0, "", "no notifications")
    refused = cli("notifications", "list", "--limit", "0", db=database)
    assert refused.code == 2 and len(refused.stderr.strip().splitlines()) == 1
