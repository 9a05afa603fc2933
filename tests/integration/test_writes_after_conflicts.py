"""Conflicting saves leave the event store's connections fit for the next command.

Five clients retrying one opening at once (same Idempotency-Key) make the writer's
batches fail on the key's uniqueness and be retried alone. Such a conflict used to be
reported, depending on timing, as "pipeline aborted" (retried for two seconds, then a
503), and could leave psycopg believing in a prepared statement the server never kept,
so that a later command failed with "prepared statement does not exist" (503 again).
Every command after such rounds must succeed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from domain.values import Role
from tests.integration.api_support import (
    ACME,
    PHONE_REQUEST,
    Api,
    register_acme,
    running_api,
    serving,
)

# The driver's behaviour, not the server's: the default server is enough.
pytestmark = pytest.mark.integration

ROUNDS = 12  # before the fix, a 503 came within 5 to 10 rounds
CLIENTS = 5


@pytest.fixture
def api(clean_database: Any) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


def open_together(base_url: str, request: dict[str, Any]) -> list[int]:
    start = threading.Barrier(CLIENTS)

    def send(_: int) -> int:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            start.wait()
            return client.request(**request).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(send, range(CLIENTS)))


def test_commands_after_rounds_of_concurrent_retries_all_succeed(api: Api) -> None:
    with serving(api.app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        for n in range(ROUNDS):
            organisation_id = register_acme(client, api)  # 201, or it fails here
            opening = {
                "method": "POST",
                "url": "/cases",
                "json": PHONE_REQUEST | {"organisation_id": organisation_id},
                "headers": api.as_(Role.AGENT, **{"Idempotency-Key": f"open-{n}"}),
            }
            assert open_together(base_url, opening) == [201] * CLIENTS, n
        last = client.post("/organisations", json=ACME, headers=api.as_(Role.ADMIN))
        assert last.status_code == 201, last.text
