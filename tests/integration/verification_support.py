"""Helpers for the caller verification tests: an organisation, the codes that went out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
from fastapi.testclient import TestClient

from casebook.database import Database
from domain.values import Role
from messaging.notifications import sent_notifications
from tests.integration.api_support import PHONE_REQUEST, Api

UNREGISTERED_PHONE = "+44 20 7946 0000"
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The write side's clock, moved by the test."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def request_code(
    client: TestClient | httpx.Client,
    api: Api,
    organisation_id: str,
    role: Role = Role.AGENT,
    **body: Any,
) -> httpx.Response:
    """POST a verification request for the unregistered caller (or `body`'s)."""
    return client.post(
        f"/organisations/{organisation_id}/caller-verifications",
        json={"caller_phone": UNREGISTERED_PHONE} | body,
        headers=api.as_(role),
    )


def confirm(
    client: TestClient | httpx.Client,
    api: Api,
    organisation_id: str,
    verification_id: str,
    code: str,
    role: Role = Role.AGENT,
) -> httpx.Response:
    """POST the code the caller read back."""
    return client.post(
        f"/organisations/{organisation_id}/caller-verifications/{verification_id}/confirm",
        json={"code": code},
        headers=api.as_(role),
    )


def standing(
    client: TestClient | httpx.Client, api: Api, organisation_id: str, verification_id: str
) -> dict[str, Any]:
    """GET the verification as an agent; it must exist."""
    response = client.get(
        f"/organisations/{organisation_id}/caller-verifications/{verification_id}",
        headers=api.as_(Role.AGENT),
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def open_for_caller(
    client: TestClient | httpx.Client, api: Api, organisation_id: str, verification_id: str | None
) -> httpx.Response:
    """An agent opens ada's case during the unregistered caller's call."""
    body = PHONE_REQUEST | {
        "organisation_id": organisation_id,
        "caller_phone": UNREGISTERED_PHONE,
        "verification_id": verification_id,
    }
    return client.post("/cases", json=body, headers=api.as_(Role.AGENT))


def last_code(database: Database, organisation_id: str) -> str:
    """The code in the newest message the embedded notifier kept for the organisation."""
    with psycopg.connect(database.url) as conn:
        [sent] = sent_notifications(conn, organisation_id=UUID(organisation_id), limit=1)
    found = re.search(r"\b(\d{6})\b", sent.message)
    assert found, sent.message
    return found.group(1)


def wrong(code: str) -> str:
    """A code that is surely not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"
