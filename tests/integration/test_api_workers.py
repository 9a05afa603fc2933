"""Several API processes on one database: no lost, duplicated or out-of-order events."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from api.keys import KeyRole, KeyStore
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from tests.integration.api_support import casebook_serve
from tests.integration.write_side import open_request, register_organisation

pytestmark = pytest.mark.integration


@pytest.fixture
def two_workers(clean_database: Database) -> Iterator[str]:
    with casebook_serve(clean_database, workers=2) as base:
        yield base


def test_two_worker_processes_keep_every_case_history_whole(
    clean_database: Database, two_workers: str
) -> None:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    try:
        organisation_id = register_organisation(casebook)
        cases = [open_request(casebook, organisation_id) for _ in range(4)]
    finally:
        casebook.close()
    token = KeyStore.for_database(clean_database).create(KeyRole.AGENT).token
    headers = {"Authorization": f"Bearer {token}"}

    def post(i: int) -> int:
        with httpx.Client(base_url=two_workers, headers=headers) as http:
            response = http.post(
                f"/cases/{cases[i % 4]}/notes", json={"text": f"n{i}", "visibility": "internal"}
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(post, range(120)))

    assert statuses == [200] * 120
    with psycopg.connect(clean_database.url) as conn:
        for case_id in cases:
            versions = [
                row[0]
                for row in conn.execute(
                    "SELECT originator_version FROM casebook_events"
                    " WHERE originator_id = %s ORDER BY notification_id",
                    (case_id,),
                )
            ]
            assert versions == list(range(1, 32))
