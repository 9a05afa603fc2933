"""Several API processes on one database: no lost, duplicated or out-of-order events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from api.keys import KeyRole, KeyStore
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from entrypoints.broker import free_port
from tests.generous_limits import GENEROUS_LIMITS
from tests.integration.write_side import open_request, register_organisation

pytestmark = pytest.mark.integration


@pytest.fixture
def two_workers(clean_database: Database) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBOOK_")}
    env |= GENEROUS_LIMITS
    env |= {"CASEBOOK_DATABASE_URL": clean_database.url, "CASEBOOK_LOG_LEVEL": "warning"}
    executable = str(Path(sys.executable).parent / "casebook")
    server = subprocess.Popen(
        [executable, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


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
