"""Limits that hold under abuse: body size, rate limits (per key, per address, failed
authentication, PIN attempts), security headers, and connections that are slow or idle."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.connections import _header_timeout, connection_options
from casebook.database import Database
from casebook.metrics import REGISTRY
from casebook.settings import Settings
from domain.values import Role
from tests.integration.api_support import Api, open_case, register_acme, running_api, serving
from tests.integration.verification_support import request_code

pytestmark = pytest.mark.integration


@pytest.fixture
def limited(clean_database: Database) -> Iterator[Api]:
    """The API with low limits, as an operator could set them."""
    settings = Settings(
        database_url=clean_database.url,
        api_max_body_bytes=4096,
        api_rate_limit_writes="3/minute",
        api_rate_limit_auth_failures="3/minute",
        api_rate_limit_verifications="1/hour",
    )
    with running_api(clean_database, settings=settings) as api:
        yield api


def stored(api: Api) -> int:
    return int(api.casebook.store.recorder.max_notification_id() or 0)


def problem(response: Any, status: int, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["rule"] == rule, body
    return body


def test_a_body_over_the_limit_is_413_and_nothing_is_written(limited: Api) -> None:
    with TestClient(limited.app) as client:
        case_id = open_case(client, limited, register_acme(client, limited))
        before = stored(limited)
        note = {"text": "x" * 5000, "visibility": "internal"}
        declared = client.post(
            f"/cases/{case_id}/notes", json=note, headers=limited.as_(Role.AGENT)
        )

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"text": "'
            yield b"y" * 5000
            yield b'", "visibility": "internal"}'

        streamed = client.post(
            f"/cases/{case_id}/notes",
            content=chunks(),
            headers=limited.as_(Role.AGENT, **{"Content-Type": "application/json"}),
        )

    for response in (declared, streamed):
        body = problem(response, 413, "request-body-size-limit")
        assert body["errors"][0]["field"] == "body"
    assert stored(limited) == before


def test_commands_over_a_keys_rate_are_429_with_retry_after_and_not_written(
    limited: Api,
) -> None:
    with TestClient(limited.app) as client:
        case_id = open_case(client, limited, register_acme(client, limited, admins=["ada"]))
        note = {"text": "Called back", "visibility": "internal"}
        answers = [
            client.post(f"/cases/{case_id}/notes", json=note, headers=limited.as_(Role.AGENT))
            for _ in range(3)
        ]
        supervisor = client.post(
            f"/cases/{case_id}/notes", json=note, headers=limited.as_(Role.SUPERVISOR)
        )

    # The agent's key opened the case (1 write) and noted twice; the third note is over.
    assert [a.status_code for a in answers] == [200, 200, 429]
    problem(answers[2], 429, "requests-within-rate-limit")
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert supervisor.status_code == 200  # another key has its own allowance
    case = limited.casebook.get_case(case_id)
    assert len(case.notes) == 3


def test_an_address_guessing_keys_is_stopped_even_with_a_valid_key(limited: Api) -> None:
    with TestClient(limited.app) as client:
        guesses = [
            client.get("/queue", headers={"Authorization": f"Bearer cbk_{n}_wrong"})
            for n in range(4)
        ]
        valid = client.get("/queue", headers=limited.as_(Role.AGENT))

    assert [g.status_code for g in guesses] == [401, 401, 401, 429]
    problem(guesses[3], 429, "authentication-failures-limited")
    problem(valid, 429, "authentication-failures-limited")
    assert "Retry-After" in valid.headers


def test_caller_verifications_are_limited_per_key(limited: Api) -> None:
    with TestClient(limited.app) as client:
        organisation_id = register_acme(client, limited)
        first = request_code(client, limited, organisation_id)
        second = request_code(client, limited, organisation_id)

    assert first.status_code == 201, first.text
    problem(second, 429, "requests-within-rate-limit")


def test_every_response_forbids_sniffing_and_caching(limited: Api) -> None:
    with TestClient(limited.app) as client:
        answers = [
            client.get("/queue", headers=limited.as_(Role.AGENT)),
            client.get("/queue"),
            client.get("/healthz"),
        ]

    for response in answers:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (reading what it sends)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_slow_and_idle_connections_are_closed_and_the_cap_answers_at_once(
    clean_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEBOOK_API_HEADER_TIMEOUT_SECONDS", "1")
    _header_timeout.cache_clear()
    settings = Settings(
        database_url=clean_database.url, api_max_connections=4, api_idle_timeout_seconds=1
    )
    closed = "casebook_http_connections_closed_total"
    before = REGISTRY.get_sample_value(closed, {"reason": "header_timeout"}) or 0
    try:
        with (
            running_api(clean_database, settings=settings) as api,
            serving(api.app, **connection_options(settings)) as url,
        ):
            port = int(url.rsplit(":", 1)[1])
            slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
            for sock in slow:  # a request head that never ends
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: casebook\r\n")
            asked = time.monotonic()
            with httpx.Client(timeout=5) as http:
                capped = http.get(f"{url}/healthz")
            assert capped.status_code in (200, 503)  # answered, at once, not hung
            assert time.monotonic() - asked < 0.9
            assert all(closed_by_server(sock, within=3) for sock in slow)

            with httpx.Client(timeout=5) as http:
                assert http.get(f"{url}/healthz").status_code == 200
            idle = socket.create_connection(("127.0.0.1", port))
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: casebook\r\n\r\n")
            assert idle.recv(4096).startswith(b"HTTP/1.1 200")
            assert closed_by_server(idle, within=3)  # kept alive, idle, then closed
    finally:
        _header_timeout.cache_clear()
    after = REGISTRY.get_sample_value(closed, {"reason": "header_timeout"}) or 0
    assert after - before >= 4
