"""Fixtures shared by every layer of tests."""

from __future__ import annotations

import pytest

from casebook.policy_source import load_policy
from domain.policy import Policy


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    """The policy casebook ships: support-policy.md with the decisions of §7."""
    return load_policy()
