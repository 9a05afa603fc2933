"""Agents writing through the API while a test does something to the system beneath."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from entrypoints.demo import DEMO_CASE, DEMO_EMAIL, DEMO_ORGANISATION, DEMO_PHONE
from tests.e2e.commands import Command


class Agents:
    """Agents opening cases and adding notes, each one request after another, until closed.

    Every request is sent with an Idempotency-Key of its own and retried until the API
    accepts it: a 503 while the database is away is an answer an agent's client
    retries. Any other refusal is kept and fails `close`.
    """

    def __init__(self, base: str, key: str, *, agents: int = 1, open_every: int = 3) -> None:
        self.accepted: list[int] = []
        self.refused: list[int] = []
        self.unexpected: list[str] = []
        self._base, self._key, self._open_every = base, key, open_every
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(agents)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        prefix = uuid.uuid4().hex  # keys never repeat, across agents and across runs
        headers = {"Authorization": f"Bearer {self._key}"}
        with httpx.Client(base_url=self._base, headers=headers, timeout=30) as client:
            number = 0
            while not self._done.is_set():
                number += 1
                key = f"{prefix}-{number}"
                if number % self._open_every == 0:
                    # Assessed at once: assessing starts the case's SLA clock, so the
                    # SLA tracker publishes events for the audit trail.
                    opened = self._send(client, "/cases", OPEN_CASE, key, expect=201)
                    if opened is not None:
                        path = f"/cases/{opened}/severity"
                        self._send(client, path, {"severity": "B"}, f"{key}-b", expect=200)
                else:
                    note = {"text": f"note {number}", "visibility": "internal"}
                    self._send(client, f"/cases/{DEMO_CASE}/notes", note, key, expect=200)

    def _send(
        self, client: httpx.Client, path: str, body: dict[str, Any], key: str, expect: int
    ) -> str | None:
        """The id of the aggregate written, once accepted (None when closed first)."""
        while not self._done.is_set():
            try:
                answer = client.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                self._done.wait(0.2)
                continue
            if answer.status_code == expect:
                self.accepted.append(answer.status_code)
                return str(answer.json()["aggregate_id"])
            if answer.status_code != 503:
                self.unexpected.append(f"{answer.status_code} {answer.text[:300]}")
                return None
            self.refused.append(answer.status_code)
            self._done.wait(0.2)
        return None

    def close(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(30)
        assert not self.unexpected, self.unexpected[:5]


OPEN_CASE = {
    "organisation_id": str(DEMO_ORGANISATION),
    "requester_id": "demo-customer-admin",
    "channel": "phone",
    "caller_phone": DEMO_PHONE,
    "category": "technical",
    "title": "Calendar sync stopped",
    "description": "Since this morning no meeting reaches the phones.",
    "contact_phone": DEMO_PHONE,
    "contact_email": DEMO_EMAIL,
}


def banner_key(run: Command, role: str) -> str:
    lines = run.text().splitlines()
    return next(line.split()[1] for line in lines if line.strip().startswith(f"{role} "))


def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        time.sleep(0.5)
