"""Optimistic concurrency over real HTTP: If-Match lets one writer win each version."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest

from casebook.database import Database
from domain.values import Role
from tests.integration.api_support import Api, open_case, register_acme, running_api, serving
from tests.integration.conftest import ON_BOTH_SERVERS

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

WRITERS = 20


@dataclass
class Writer:
    """One client adding its note, retrying after each 409 with the version it was told."""

    number: int
    attempts: list[tuple[int, int, int | None]] = field(
        default_factory=list
    )  # if-match, status, version
    won_version: int | None = None

    @property
    def text(self) -> str:
        return f"note from writer {self.number}"


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


@pytest.fixture
def base_url(api: Api) -> Iterator[str]:
    with serving(api.app) as url:
        yield url


def write_until_accepted(
    writer: Writer, base_url: str, url: str, api: Api, version: int, start: threading.Barrier
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        start.wait()
        for _ in range(WRITERS * 2):
            headers = api.as_(Role.AGENT, **{"If-Match": f'"{version}"'})
            response = client.post(url, json={"text": writer.text}, headers=headers)
            if response.status_code == 200:
                writer.won_version = response.json()["version"]
                assert response.headers["ETag"] == f'"{writer.won_version}"'
                writer.attempts.append((version, 200, writer.won_version))
                return
            assert response.status_code == 409, response.text
            problem = response.json()
            assert problem["rule"] == "expected-version-matches"
            assert problem["current_version"] > version
            writer.attempts.append((version, 409, problem["current_version"]))
            version = problem["current_version"]
    raise AssertionError(f"writer {writer.number} never got its note in")


def test_each_version_has_exactly_one_winner_and_losers_catch_up(api: Api, base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        case_id = open_case(client, api, register_acme(client, api))
        first = int(
            client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT)).headers["ETag"].strip('"')
        )
    writers = [Writer(n) for n in range(WRITERS)]
    start = threading.Barrier(WRITERS)
    url = f"/cases/{case_id}/notes"
    with ThreadPoolExecutor(WRITERS) as pool:
        for future in [
            pool.submit(write_until_accepted, w, base_url, url, api, first, start) for w in writers
        ]:
            future.result()

    attempts = [attempt for w in writers for attempt in w.attempts]
    first_round = [status for if_match, status, _ in attempts if if_match == first]
    assert sorted(first_round) == [200] + [409] * (WRITERS - 1)
    for version in {if_match for if_match, _, _ in attempts}:
        winners = [a for a in attempts if a[0] == version and a[1] == 200]
        assert len(winners) == 1, f"version {version} had {len(winners)} winners"
    assert sorted(w.won_version for w in writers if w.won_version) == list(
        range(first + 1, first + WRITERS + 1)
    )

    with httpx.Client(base_url=base_url) as client:
        history = client.get(f"/cases/{case_id}/events", headers=api.as_(Role.AUDITOR)).json()
    versions = [event["version"] for event in history["events"]]
    assert versions == list(range(1, first + WRITERS + 1)), "gaps or duplicates in the history"
    notes = {
        event["version"]: event["data"]["text"]
        for event in history["events"]
        if event["type"] == "casebook.case.note_added.v1"
    }
    assert notes == {w.won_version: w.text for w in writers}
