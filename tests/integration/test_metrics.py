"""`GET /metrics`: the pipeline's lags, the API's requests and the write side's batches
for Prometheus, public or behind an admin key, and still answering without a database."""

from __future__ import annotations

import socket
import uuid

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import registry_with
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Role
from entrypoints.background import serve_metrics
from entrypoints.broker import Broker
from projections.metrics import DatabaseCollector
from tests.integration.api_support import open_case, register_acme, running_api
from tests.integration.pipeline_support import until, whole_system

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


def _generate(collector: DatabaseCollector) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry_with(collector)).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
