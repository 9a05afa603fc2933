"""Kafka for tests: one embedded tansu broker per session and a fresh topic per test.

Registered from the root conftest (`pytest_plugins`); the broker starts only when a test
first asks for it. tansu's limits (see casebook/broker.py) apply: read end offsets from a
consumer's highwater after a poll, and give consumer groups short session timeouts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient

from casebook.broker import Broker, embedded_broker

DEFAULT_PARTITIONS = 3


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that sets `kafka_topic`'s partition count."""
    config.addinivalue_line(
        "markers", "kafka_partitions(n): partitions of the test's kafka_topic (default 3)"
    )


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """A tansu broker on a free loopback port for the whole session, stopped at its end."""
    with embedded_broker() as broker:
        yield broker


@pytest.fixture
def kafka_topic(kafka_broker: Broker, request: pytest.FixtureRequest) -> str:
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
