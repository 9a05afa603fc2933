"""Fixtures shared by every layer of tests."""

from __future__ import annotations

import os
import random
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from casebook.policy_source import load_policy
from domain.policy import Policy
from tests.directories import private_directory
from tests.generous_limits import GENEROUS_LIMITS
from tests.master_key import MASTER_KEY_VARIABLE, session_master_key_file

# Every Settings() of the suite, and every process it starts with this environment.
for _name, _limit in GENEROUS_LIMITS.items():
    os.environ.setdefault(_name, _limit)
if MASTER_KEY_VARIABLE not in os.environ:
    os.environ[MASTER_KEY_VARIABLE] = str(session_master_key_file())

# Kafka fixtures (kafka_broker, kafka_topic) for any test that asks for them.
pytest_plugins = ["tests.kafka"]

# A scenario's random choices are replayed by setting this to the seed its failure named.
SEED_VARIABLE = "CASEBOOK_TEST_SEED"


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    """The policy casebook ships: support-policy.md with the decisions of §7."""
    return load_policy()


@pytest.fixture
def data_home() -> Iterator[Path]:
    """An empty directory for a test's own embedded PostgreSQL (see tests/directories.py)."""
    with private_directory("casebook-test-data-") as directory:
        yield directory


@pytest.fixture
def chance(request: pytest.FixtureRequest) -> random.Random:
    """A test's source of random choices, seeded from CASEBOOK_TEST_SEED when set, else afresh.

    The seed goes into the test's report (`user_properties`); a failure names it.
    """
    given = os.environ.get(SEED_VARIABLE)
    seed = int(given) if given else random.SystemRandom().randrange(2**32)
    request.node.user_properties.append(("seed", seed))
    return random.Random(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the seed of a failed test that drew on `chance` to its report, as a re-run line."""
    report = yield
    if report.failed:
        for name, seed in item.user_properties:
            if name == "seed":
                rerun = f"{SEED_VARIABLE}={seed} pytest -n0 '{item.nodeid}'"
                report.sections.append(("seed", f"seed {seed}; to replay: {rerun}"))
    return report
