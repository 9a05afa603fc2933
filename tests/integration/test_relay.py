"""The relay on real PostgreSQL and a real (tansu) broker: complete, ordered, deduplicable."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.cases.state import NoteVisibility
from entrypoints.broker import Broker
from relay.relay import Relay
from tests.integration.relay_support import (
    RunningRelay,
    headers,
    last_position,
    stored_ids,
    wait_for,
)
from tests.integration.topic_support import consume
from tests.integration.write_side import as_agent, open_request, register_organisation
from tests.kafka import ON_BOTH_BROKERS

pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]


@pytest.fixture
def casebook(clean_database: Database) -> Iterator[Casebook]:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    yield casebook
    casebook.close()


@pytest.fixture
def start_relay(
    clean_database: Database, kafka_broker: Broker, casebook: Casebook
) -> Iterator[Callable[..., RunningRelay]]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    running: list[RunningRelay] = []

    def start(**overrides: Any) -> RunningRelay:
        settings = Settings(
            database_url=clean_database.url, topic_prefix=prefix, topic_partitions=3, **overrides
        )
        relay = Relay(
            casebook.store,
            clean_database,
            settings,
            bootstrap_servers=kafka_broker.bootstrap_servers,
        )
        running.append(RunningRelay(relay))
        return running[-1]

    yield start
    for each in running:
        each.close()


def work_some_cases(casebook: Casebook, cases: int, notes: int) -> list[uuid.UUID]:
    organisation_id = register_organisation(casebook)
    opened = [open_request(casebook, organisation_id) for _ in range(cases)]
    for i in range(notes):
        casebook.execute(
            c.AddNote(opened[i % cases], f"note {i}", NoteVisibility.INTERNAL), as_agent()
        )
    return opened


def test_every_stored_event_arrives_once_in_order_as_a_cloudevent(
    casebook: Casebook, clean_database: Database, kafka_broker: Broker, start_relay: Any
) -> None:
    work_some_cases(casebook, cases=10, notes=90)
    expected = last_position(clean_database)  # 1 organisation + 10 opened + 90 notes
    running = start_relay()
    assert wait_for(lambda: running.relay.position() == expected, timeout=30)

    records = consume(kafka_broker.bootstrap_servers, running.relay.topic, expected)

    ids = [headers(r)["ce_id"] for r in records]
    assert len(ids) == expected == len(set(ids))
    by_subject: dict[str, list[int]] = {}
    for record in records:
        h = headers(record)
        assert h["ce_specversion"] == "1.0" and h["content-type"] == "application/json"
        assert re.fullmatch(r"casebook\.[a-z]+\.[a-z_]+\.v[0-9]+", h["ce_type"])
        assert record.key.decode() == h["ce_subject"]
        assert h["ce_id"] == f"{h['ce_subject']}:{h['ce_sequence']}"
        by_subject.setdefault(h["ce_subject"], []).append(int(h["ce_sequence"]))
    for versions in by_subject.values():
        assert versions == list(range(1, len(versions) + 1))


def test_the_analytics_payload_leaves_out_personal_data(
    casebook: Casebook, clean_database: Database, kafka_broker: Broker, start_relay: Any
) -> None:
    work_some_cases(casebook, cases=1, notes=0)
    running = start_relay()
    assert wait_for(lambda: running.relay.position() == 2, timeout=30)
    records = consume(kafka_broker.bootstrap_servers, running.relay.topic, 2)
    opened = next(r for r in records if headers(r)["ce_type"] == "casebook.case.opened.v5")
    payload = json.loads(opened.value)
    assert payload["category"] == "technical"
    assert "contact_phone" not in payload and "contact_email" not in payload
    assert "+86" not in opened.value.decode()


def test_a_restarted_relay_resumes_from_its_position_without_duplicates(
    casebook: Casebook, clean_database: Database, kafka_broker: Broker, start_relay: Any
) -> None:
    cases = work_some_cases(casebook, cases=3, notes=10)
    first = start_relay()
    assert wait_for(lambda: first.relay.position() == last_position(clean_database), 30)
    first.close()
    for i in range(10):
        casebook.execute(c.AddNote(cases[i % 3], f"later {i}", NoteVisibility.INTERNAL), as_agent())

    second = start_relay()
    expected = last_position(clean_database)
    assert wait_for(lambda: second.relay.position() == expected, timeout=30)
    ids = [
        headers(r)["ce_id"]
        for r in consume(kafka_broker.bootstrap_servers, second.relay.topic, expected)
    ]
    assert len(ids) == expected == len(set(ids))


def test_only_one_of_two_relays_publishes_and_the_other_takes_over(
    casebook: Casebook, clean_database: Database, kafka_broker: Broker, start_relay: Any
) -> None:
    cases = work_some_cases(casebook, cases=2, notes=4)
    one, two = start_relay(), start_relay()
    assert wait_for(lambda: one.relay.position() == last_position(clean_database), 30)
    leader, standby = (one, two) if one.relay.published else (two, one)
    assert standby.relay.published == 0

    leader.close()  # its lock session ends with it
    for i in range(6):
        casebook.execute(c.AddNote(cases[i % 2], f"after {i}", NoteVisibility.INTERNAL), as_agent())
    expected = last_position(clean_database)
    assert wait_for(lambda: standby.relay.published > 0, timeout=15)
    assert wait_for(lambda: standby.relay.position() == expected, timeout=30)
    ids = [
        headers(r)["ce_id"]
        for r in consume(kafka_broker.bootstrap_servers, standby.relay.topic, expected)
    ]
    assert len(ids) == expected == len(set(ids))


def test_a_broker_that_lost_its_data_gets_everything_again(
    casebook: Casebook, clean_database: Database, own_broker: Broker
) -> None:
    broker = own_broker  # this test's alone: emptying it touches no other test
    settings = Settings(database_url=clean_database.url, topic_prefix=f"t{uuid.uuid4().hex[:10]}")
    relay = Relay(
        casebook.store, clean_database, settings, bootstrap_servers=broker.bootstrap_servers
    )
    running = RunningRelay(relay)
    try:
        cases = work_some_cases(casebook, cases=3, notes=12)
        assert wait_for(lambda: relay.position() == last_position(clean_database), 30)

        broker.empty()  # topics and records are gone
        for i in range(6):
            casebook.execute(
                c.AddNote(cases[i % 3], f"after {i}", NoteVisibility.INTERNAL), as_agent()
            )
        expected = last_position(clean_database)
        # A busy machine may need minutes to restart an emptied broker and republish.
        assert wait_for(lambda: relay.position() == expected, timeout=180)
        records = consume(broker.bootstrap_servers, relay.topic, expected)
        assert {headers(r)["ce_id"] for r in records} == stored_ids(clean_database)
    finally:
        running.close()
