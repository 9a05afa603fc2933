"""The consumer runtime against a real PostgreSQL and a real (tansu) broker."""

from __future__ import annotations

import pytest

from casebook.broker import Broker
from casebook.database import Database
from tests.integration.consumer_support import (
    WAIT_S,
    Setup,
    applied,
    event,
    make_setup,
    publish,
    running,
    scalar,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(kafka_broker: Broker, clean_database: Database, request: pytest.FixtureRequest) -> Setup:
    marker = request.node.get_closest_marker("kafka_partitions")
    return make_setup(kafka_broker, clean_database, marker.args[0] if marker else 3)


def test_applies_every_event_once_and_stores_offsets_with_the_rows(setup: Setup) -> None:
    projection = setup.projection()
    events = [event(f"case-{s}", n) for n in range(1, 5) for s in range(5)]
    publish(setup, *events)
    with running(setup.runtime(projection)):
        assert wait_for(lambda: len(applied(setup, projection.name)) == 20, WAIT_S)
    rows = applied(setup, projection.name)
    assert sorted(rows) == sorted(f"case-{s}:{n}" for n in range(1, 5) for s in range(5))
    for s in range(5):
        assert applied(setup, projection.name, f"case-{s}") == [
            f"case-{s}:{n}" for n in range(1, 5)
        ]
    stored = scalar(
        setup.database,
        "SELECT sum(next_offset) FROM casebook_consumer_offsets WHERE consumer_group = %s",
        projection.name,
    )
    assert stored == 20
    sequences = scalar(
        setup.database,
        "SELECT array_agg(DISTINCT sequence) FROM casebook_consumer_sequences"
        " WHERE consumer_group = %s",
        projection.name,
    )
    assert sequences == [4]
