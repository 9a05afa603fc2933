"""A managed-Kafka shape: SASL_SSL with SCRAM and a private CA, configured by settings only.

The relay publishes and the SLA tracker consumes over the SASL_SSL listener of a real
Apache Kafka broker; a wrong password or an untrusted CA stops `casebook relay` at once
with one line naming the setting to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from casebook.database import Database
from domain.values import Role
from entrypoints.apache_kafka import ApacheKafkaCluster, apache_kafka
from entrypoints.apache_kafka_tls import make_tls_files
from tests.integration.api_support import open_case, register_acme
from tests.integration.conftest import CliRunner
from tests.integration.pipeline_support import command, until, whole_system

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]


@pytest.fixture(scope="module")
def secured() -> Iterator[ApacheKafkaCluster]:
    """One Apache Kafka node with a SASL_SSL listener (SCRAM user, test CA)."""
    with apache_kafka(1, sasl_ssl=True) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def on_apache_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEBOOK_KAFKA_BROKER_KIND", "apache")


def security(cluster: ApacheKafkaCluster, **changes: Any) -> dict[str, Any]:
    """The settings a deployment would set for this cluster's SASL_SSL listener."""
    return {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": cluster.sasl_username,
        "kafka_sasl_password": cluster.sasl_password,
        "kafka_ssl_cafile": cluster.ca_file,
    } | changes


def as_environment(settings: dict[str, Any]) -> dict[str, str]:
    return {f"CASEBOOK_{name.upper()}": str(value) for name, value in settings.items()}


def test_the_relay_publishes_and_the_sla_tracker_applies_over_sasl_ssl(
    clean_database: Database, secured: ApacheKafkaCluster
) -> None:
    listener = SimpleNamespace(bootstrap_servers=secured.sasl_ssl_bootstrap_servers)
    with whole_system(clean_database, listener, **security(secured)) as (api, client, _):  # type: ignore[arg-type]
        organisation = register_acme(client, api)
        case_id = open_case(client, api, organisation)
        command(client, api, f"/cases/{case_id}/severity", {"severity": "B"})
        status = until(
            lambda: client.get(f"/cases/{case_id}/sla", headers=api.as_(Role.AGENT)).json(),
            lambda body: bool(body.get("clocks")),
            timeout=60,
        )
    assert status["clocks"][0]["state"] == "running"


def run_relay(
    cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    database: Database,
    cluster: ApacheKafkaCluster,
    **changes: Any,
) -> tuple[int, str]:
    """`casebook relay` against the SASL_SSL listener; its exit code and stderr."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", cluster.sasl_ssl_bootstrap_servers)
    for name, value in as_environment(security(cluster, **changes)).items():
        monkeypatch.setenv(name, value)
    result = cli("relay", db=database)
    return result.code, result.stderr


def test_a_wrong_password_stops_the_relay_in_one_line_naming_the_setting(
    cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    clean_database: Database,
    secured: ApacheKafkaCluster,
) -> None:
    code, stderr = run_relay(
        cli, monkeypatch, clean_database, secured, kafka_sasl_password="not-the-password"
    )
    assert code == 1
    assert stderr.startswith("casebook: error: Kafka refused the SCRAM-SHA-512 login")
    assert "CASEBOOK_KAFKA_SASL_PASSWORD" in stderr
    assert "not-the-password" not in stderr
    assert stderr.count("\n") == 1


def test_an_unknown_ca_stops_the_relay_in_one_line_naming_the_setting(
    cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    clean_database: Database,
    secured: ApacheKafkaCluster,
    tmp_path: Path,
) -> None:
    stranger = make_tls_files(tmp_path / "other-ca")  # a CA that signed nothing of the broker's
    code, stderr = run_relay(
        cli, monkeypatch, clean_database, secured, kafka_ssl_cafile=stranger.ca_file
    )
    assert code == 1
    assert "is not trusted by CASEBOOK_KAFKA_SSL_CAFILE" in stderr
    assert stderr.count("\n") == 1
