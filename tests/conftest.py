"""Fixtures shared by every layer of tests."""

from __future__ import annotations

import pytest

from casebook.policy_source import load_policy
from domain.policy import Policy

# Kafka fixtures (kafka_broker, kafka_topic) for any test that asks for them.
pytest_plugins = ["tests.kafka"]


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    """The policy casebook ships: support-policy.md with the decisions of §7."""
    return load_policy()
