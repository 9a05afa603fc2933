"""Fixtures shared by every layer of tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from casebook.policy_source import load_policy
from domain.policy import Policy
from tests.directories import private_directory

# Kafka fixtures (kafka_broker, kafka_topic) for any test that asks for them.
pytest_plugins = ["tests.kafka"]


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    """The policy casebook ships: support-policy.md with the decisions of §7."""
    return load_policy()


@pytest.fixture
def data_home() -> Iterator[Path]:
    """An empty directory for a test's own embedded PostgreSQL (see tests/directories.py)."""
    with private_directory("casebook-test-data-") as directory:
        yield directory
