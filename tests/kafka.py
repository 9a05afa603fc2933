"""Kafka for tests: tansu by default, Apache Kafka where a test runs `ON_BOTH_BROKERS`.

Registered from the root conftest (`pytest_plugins`); each broker starts when a test
first asks for it and serves the whole test process. tansu needs only Python; Apache
Kafka (KRaft, resolved from Maven Central, run on the machine's Java) runs in the
`apache_kafka` tier that `make test-kafka` selects and `make test` leaves out.

Processes and `Settings` learn which broker they talk to from CASEBOOK_KAFKA_BROKER_KIND:
tansu for the session, switched to apache for the tests that use Apache Kafka.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from typing import Protocol

import pytest
from kafka import KafkaAdminClient

from entrypoints.broker import embedded_broker

DEFAULT_PARTITIONS = 3
BROKER_KIND_VARIABLE = "CASEBOOK_KAFKA_BROKER_KIND"

# Pipeline modules run their broker-using tests on both brokers; the Apache Kafka half is
# the `apache_kafka` tier. Tests of such a module that use no broker run once.
BROKERS = ["tansu", pytest.param("apache", marks=pytest.mark.apache_kafka)]
ON_BOTH_BROKERS = pytest.mark.on_both_brokers


class RunningBroker(Protocol):
    """What tests use of a broker, tansu or an Apache Kafka cluster."""

    bootstrap_servers: str

    def restart(self) -> None:
        """Stop and start again on the same ports (tansu forgets everything; Kafka does not)."""

    def empty(self) -> None:
        """Restart with every topic, record and consumer group gone, on the same ports."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, and make tansu the broker processes assume unless told."""
    config.addinivalue_line(
        "markers", "kafka_partitions(n): partitions of the test's kafka_topic (default 3)"
    )
    config.addinivalue_line(
        "markers", "on_both_brokers: each test that uses a broker runs on tansu and Apache Kafka"
    )
    os.environ.setdefault(BROKER_KIND_VARIABLE, "tansu")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run `ON_BOTH_BROKERS` tests that use a broker once per broker."""
    marked = metafunc.definition.get_closest_marker("on_both_brokers") is not None
    if marked and "broker_kind" in metafunc.fixturenames:
        metafunc.parametrize("broker_kind", BROKERS, indirect=True)


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[RunningBroker]:
    """A tansu broker on a free loopback port for the whole session, stopped at its end."""
    with embedded_broker() as broker:
        yield broker


@pytest.fixture(scope="session")
def apache_broker() -> Iterator[RunningBroker]:
    """A single Apache Kafka broker (KRaft) on free loopback ports for the whole session."""
    from entrypoints.apache_kafka import apache_kafka

    with apache_kafka(brokers=1) as cluster:
        yield cluster


@pytest.fixture
def broker_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which broker the test uses: tansu, or each in turn under `ON_BOTH_BROKERS`."""
    kind: str = getattr(request, "param", "tansu")
    monkeypatch.setenv(BROKER_KIND_VARIABLE, kind)
    return kind


@pytest.fixture
def kafka_broker(broker_kind: str, request: pytest.FixtureRequest) -> RunningBroker:
    """The test process's broker of the test's kind, shared with other tests."""
    broker: RunningBroker = request.getfixturevalue(f"{broker_kind}_broker")
    return broker


@pytest.fixture
def own_broker(broker_kind: str) -> Iterator[RunningBroker]:
    """A broker of the test's kind for this test alone: no other test's groups or records,
    and free to be restarted, emptied or killed."""
    if broker_kind == "tansu":
        with embedded_broker() as broker:
            yield broker
        return
    from entrypoints.apache_kafka import apache_kafka

    with apache_kafka(brokers=1) as cluster:
        yield cluster


@pytest.fixture
def kafka_topic(kafka_broker: RunningBroker, request: pytest.FixtureRequest) -> str:
    """A new topic with a unique name (3 partitions, or `@pytest.mark.kafka_partitions(n)`)."""
    marker = request.node.get_closest_marker("kafka_partitions")
    partitions = marker.args[0] if marker else DEFAULT_PARTITIONS
    # The test's name makes a topic easy to trace in broker output; the suffix keeps it unique.
    test_name = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:60]
    topic = f"test-{test_name}-{uuid.uuid4().hex[:8]}"
    with KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers) as admin:
        admin.create_topics(
            {topic: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
    return topic
