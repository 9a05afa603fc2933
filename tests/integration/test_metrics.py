"""`GET /metrics`: the pipeline's lags, the API's requests and the write side's batches
for Prometheus, public or behind an admin key, and still answering without a database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import registry_with
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Role
from entrypoints.background import serve_metrics
from entrypoints.broker import Broker
from projections.metrics import DatabaseCollector
from tests.integration.api_support import casebook_serve, open_case, register_acme, running_api
from tests.integration.pipeline_support import until, whole_system
from tests.integration.write_side import register_organisation

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def test_a_scrape_during_a_run_sees_relay_and_consumer_lag_fall_to_zero(
    clean_database: Database, kafka_broker: Broker
) -> None:
    with whole_system(clean_database, kafka_broker) as (api, client, _):
        organisation = register_acme(client, api)
        for _ in range(3):
            open_case(client, api, organisation)

        def scrape() -> Samples:
            response = client.get("/metrics")
            assert response.status_code == 200, response.text
            return samples(response.text)

        # The consumer writes its lag to the database every 10 s: allow for a few reports.
        found = until(
            scrape,
            lambda s: (
                value(s, "casebook_relay_lag", relay="case-events") == 0
                and value(s, "casebook_consumer_lag", group="sla") == 0
                and value(s, "casebook_part_lag", part="sla-consumer") == 0
            ),
            timeout=40,
        )
        assert value(found, "casebook_metrics_database_up") == 1
        assert value(found, "casebook_part_state", part="sla-consumer", state="running") == 1
        assert (value(found, "casebook_write_batch_size_count") or 0) >= 4
        opened = value(
            found,
            "casebook_http_request_duration_seconds_count",
            route="/cases",
            method="POST",
            status="201",
        )
        assert opened is not None and opened >= 3


def test_the_request_histogram_labels_route_templates_not_raw_paths(database: Database) -> None:
    with running_api(database) as api, TestClient(api.app) as client:
        organisation = register_acme(client, api)
        case_id = open_case(client, api, organisation)
        client.get(f"/cases/{case_id}", headers=api.as_(Role.AGENT))
        client.get(f"/no/such/{uuid.uuid4()}")
        text = client.get("/metrics").text
    found = samples(text)
    labels = {"method": "GET", "status": "200"}
    template = {"route": "/cases/{case_id}"}
    assert value(found, "casebook_http_request_duration_seconds_count", **template, **labels)
    unmatched = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert value(found, "casebook_http_request_duration_seconds_count", **unmatched)
    assert case_id not in text
    assert "# HELP casebook_http_request_duration_seconds" in text


def test_metrics_need_an_admin_or_supervisor_key_when_so_configured(database: Database) -> None:
    settings = Settings(database_url=database.url, metrics_require_key=True)
    with running_api(database, settings=settings) as api, TestClient(api.app) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=api.as_(Role.AGENT)).status_code == 403
        answered = client.get("/metrics", headers=api.as_(Role.ADMIN))
        assert answered.status_code == 200
        assert answered.headers["Content-Type"].startswith("text/plain")
        assert client.get("/metrics", headers=api.as_(Role.SUPERVISOR)).status_code == 200


def test_metrics_are_public_by_default(database: Database) -> None:
    with running_api(database) as api, TestClient(api.app) as client:
        assert client.get("/metrics").status_code == 200


def test_a_scrape_without_the_database_still_answers_with_database_up_0() -> None:
    unreachable = f"postgresql://nobody@127.0.0.1:{_free_port()}/nothing"
    text = _generate(DatabaseCollector(unreachable))
    found = samples(text)
    assert value(found, "casebook_metrics_database_up") == 0
    assert "casebook_write_batch_seconds" in text  # the in-memory metrics are all there
    assert "casebook_relay_lag" not in text


def test_relay_lag_counts_stored_events_past_the_relays_position(clean_database: Database) -> None:
    with running_api(clean_database) as api, TestClient(api.app) as client:
        register_acme(client, api)
        with psycopg.connect(clean_database.url, autocommit=True) as conn:
            last = conn.execute("SELECT max(notification_id) FROM casebook_events").fetchone()
            assert last is not None
            conn.execute(
                "INSERT INTO casebook_relay_positions (relay, position) VALUES ('behind', %s)",
                (last[0] - 1,),
            )
        found = samples(_generate(DatabaseCollector(clean_database.url)))
    assert value(found, "casebook_relay_lag", relay="behind") == 1
    assert value(found, "casebook_metrics_database_up") == 1


def test_a_standalone_process_serves_its_metrics_on_its_port(database: Database) -> None:
    settings = Settings(database_url=database.url, metrics_port=_free_port())
    with serve_metrics(settings, database.url) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert value(samples(response.text), "casebook_metrics_database_up") == 1


REQUESTS = 60
SCRAPES = 8
COUNT = "casebook_http_request_duration_seconds_count"


def test_two_workers_answer_every_scrape_for_both_and_read_the_database_once(
    clean_database: Database, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "api-metrics"
    _leave_requests_of_a_killed_run(metrics_dir, requests=1000)
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    try:
        register_organisation(casebook)
    finally:
        casebook.close()
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO casebook_relay_positions (relay, position)"
            " SELECT 'behind', max(notification_id) - 1 FROM casebook_events"
        )
    env = {"CASEBOOK_API_METRICS_DIR": str(metrics_dir)}
    with casebook_serve(clean_database, workers=2, env=env) as base:

        def healthz(_: int) -> int:
            return httpx.get(f"{base}/healthz").status_code

        # One connection per request, several at once: both processes take some.
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(healthz, range(REQUESTS)))
        assert statuses == [200] * REQUESTS
        scrapes: list[Samples] = []

        def scrape() -> Samples:
            response = httpx.get(f"{base}/metrics", timeout=10)
            assert response.status_code == 200, response.text
            scrapes.append(samples(response.text))
            return scrapes[-1]

        # The last request is counted just after its answer was sent: wait for it once.
        until(scrape, lambda s: value(s, COUNT, **_healthz) == REQUESTS, timeout=10)
        scrapes.clear()
        for _ in range(SCRAPES):
            scrape()
        per_process = _healthz_counts_per_process(metrics_dir)

    assert len(per_process) == 2 and all(per_process), per_process
    for found in scrapes:
        assert value(found, COUNT, **_healthz) == REQUESTS
        assert value(found, "casebook_relay_lag", relay="behind") == 1
        assert value(found, "casebook_metrics_database_up") == 1
        # Each process's key pool may open 5 connections (db_pool_size 10, halved).
        assert value(found, "casebook_db_pool_max", pool="keys") == 10
    scraped = [value(found, COUNT, **_metrics) or 0 for found in scrapes]
    assert scraped == sorted(scraped) and scraped[-1] - scraped[0] >= SCRAPES - 2, scraped
    assert not list(metrics_dir.glob("gauge_livesum_*.db")), "a stopped process's pools count"


def test_a_killed_worker_keeps_its_requests_counted_and_its_pools_leave_the_sums(
    clean_database: Database, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "api-metrics"
    env = {"CASEBOOK_API_METRICS_DIR": str(metrics_dir)}
    with casebook_serve(clean_database, workers=2, env=env) as base:

        def healthz(_: int) -> int:
            return httpx.get(f"{base}/healthz").status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(healthz, range(REQUESTS))) == [200] * REQUESTS

        def scrape() -> Samples:
            return samples(httpx.get(f"{base}/metrics", timeout=10).text)

        found = until(scrape, lambda s: value(s, COUNT, **_healthz) == REQUESTS, timeout=10)
        assert value(found, COUNT, **_healthz) == REQUESTS
        before = until(lambda: _live(metrics_dir), lambda pids: len(pids) == 2, timeout=10)
        assert len(before) == 2, before
        killed = min(before)
        os.kill(killed, signal.SIGKILL)
        # uvicorn starts another process in its place; its pools join the sums.
        after = until(lambda: _live(metrics_dir) - before, lambda pids: len(pids) == 1, timeout=60)
        assert len(after) == 1, after
        found = until(
            scrape,
            lambda s: value(s, "casebook_db_pool_max", pool="keys") == 10,
            timeout=10,
        )
        assert value(found, "casebook_db_pool_max", pool="keys") == 10
        assert _live(metrics_dir) == before - {killed} | after
    assert value(found, COUNT, **_healthz) == REQUESTS


def _live(metrics_dir: Path) -> set[int]:
    """The processes whose pool gauges are in the directory."""
    return {int(file.stem.rpartition("_")[2]) for file in metrics_dir.glob("gauge_livesum_*.db")}


_healthz = {"route": "/healthz", "method": "GET", "status": "200"}
_metrics = {"route": "/metrics", "method": "GET", "status": "200"}


def _leave_requests_of_a_killed_run(metrics_dir: Path, *, requests: int) -> None:
    """The files an API process of an earlier `serve` leaves when it is killed."""
    count = (
        "from api.middleware import REQUEST_SECONDS\n"
        f"for _ in range({requests}):\n"
        "    REQUEST_SECONDS.labels('/healthz', 'GET', '200').observe(0.001)\n"
    )
    metrics_dir.mkdir()
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    subprocess.run([sys.executable, "-c", count], env=env, check=True)
    assert list(metrics_dir.glob("histogram_*.db"))


def _healthz_counts_per_process(metrics_dir: Path) -> list[float]:
    """`/healthz` requests each API process counted, from its own file."""
    counts = []
    for file in sorted(metrics_dir.glob("histogram_*.db")):
        merged = MultiProcessCollector.merge([str(file)])
        counts.append(
            sum(
                sample.value
                for family in merged
                for sample in family.samples
                if sample.name == COUNT and sample.labels == _healthz
            )
        )
    return counts


def _generate(collector: DatabaseCollector) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry_with(collector)).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
