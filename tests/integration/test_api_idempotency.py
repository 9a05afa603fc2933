"""Idempotency-Key: a retried command runs once and answers the same every time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from domain.values import Role
from tests.integration.api_support import (
    PHONE_REQUEST,
    Api,
    open_case,
    register_acme,
    serving,
)
from tests.integration.conftest import ON_BOTH_SERVERS

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

REPEATS = 5


@pytest.fixture(scope="module")
def base_url(api: Api) -> Iterator[str]:
    with serving(api.app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def answer(response: httpx.Response) -> tuple[int, Any, str | None]:
    """What a client relies on: status, body and the ETag."""
    return response.status_code, response.json(), response.headers.get("ETag")


def send_together(base_url: str, requests: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send the requests at the same moment, each on its own connection."""
    start = threading.Barrier(len(requests))

    def send(request: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            start.wait()
            return client.request(**request)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def history(client: httpx.Client, api: Api, case_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/cases/{case_id}/events", headers=api.as_(Role.AUDITOR))
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_a_command_repeated_with_its_key_runs_once(api: Api, client: httpx.Client) -> None:
    case_id = open_case(client, api, register_acme(client, api))
    headers = api.as_(Role.AGENT, **{"Idempotency-Key": "note-seq-1"})
    responses = [
        client.post(f"/cases/{case_id}/notes", json={"text": "called back"}, headers=headers)
        for _ in range(REPEATS)
    ]
    assert responses[0].status_code == 200
    assert {str(answer(r)) for r in responses} == {str(answer(responses[0]))}
    assert [r.headers.get("Idempotent-Replayed") for r in responses[1:]] == ["true"] * (REPEATS - 1)
    assert [e["version"] for e in history(client, api, case_id)] == [1, 2]


def test_concurrent_repeats_of_one_key_run_once(
    api: Api, client: httpx.Client, base_url: str
) -> None:
    case_id = open_case(client, api, register_acme(client, api))
    request = {
        "method": "POST",
        "url": f"/cases/{case_id}/notes",
        "json": {"text": "called back"},
        "headers": api.as_(Role.AGENT, **{"Idempotency-Key": "note-concurrent-1"}),
    }
    responses = send_together(base_url, [request] * REPEATS)
    assert {str(answer(r)) for r in responses} == {str(answer(responses[0]))}
    assert responses[0].status_code == 200
    assert [e["version"] for e in history(client, api, case_id)] == [1, 2]


def test_concurrent_repeats_of_an_opening_open_one_case(
    api: Api, client: httpx.Client, base_url: str
) -> None:
    organisation_id = register_acme(client, api)
    request = {
        "method": "POST",
        "url": "/cases",
        "json": PHONE_REQUEST | {"organisation_id": organisation_id},
        "headers": api.as_(Role.AGENT, **{"Idempotency-Key": f"open-{organisation_id}"}),
    }
    responses = send_together(base_url, [request] * REPEATS)
    assert {str(answer(r)) for r in responses} == {str(answer(responses[0]))}
    assert responses[0].status_code == 201
    assert {r.headers["Location"] for r in responses} == {
        f"/cases/{responses[0].json()['aggregate_id']}"
    }
    listed = client.get(f"/organisations/{organisation_id}/cases", headers=api.as_(Role.AUDITOR))
    assert [item["case_id"] for item in listed.json()["items"]] == [
        responses[0].json()["aggregate_id"]
    ]


def test_a_key_reused_for_another_request_is_a_422_naming_the_header(
    api: Api, client: httpx.Client
) -> None:
    case_id = open_case(client, api, register_acme(client, api))
    headers = api.as_(Role.AGENT, **{"Idempotency-Key": "note-reused-1"})
    first = client.post(f"/cases/{case_id}/notes", json={"text": "one"}, headers=headers)
    assert first.status_code == 200
    reused = client.post(f"/cases/{case_id}/notes", json={"text": "two"}, headers=headers)
    assert reused.status_code == 422
    assert reused.headers["Content-Type"] == "application/problem+json"
    problem = reused.json()
    assert problem["rule"] == "idempotency-key-matches-request"
    assert problem["errors"][0]["field"] == "header.Idempotency-Key"
    assert [e["version"] for e in history(client, api, case_id)] == [1, 2]


def test_keys_belong_to_their_principal(api: Api, client: httpx.Client) -> None:
    case_id = open_case(client, api, register_acme(client, api))
    url, body = f"/cases/{case_id}/notes", {"text": "same words"}
    for role in (Role.AGENT, Role.SUPERVISOR):
        headers = api.as_(role, **{"Idempotency-Key": "shared-key"})
        assert client.post(url, json=body, headers=headers).status_code == 200
    assert [e["version"] for e in history(client, api, case_id)] == [1, 2, 3]
