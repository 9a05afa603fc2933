"""The relay publishes where each command came from, its trace included, and a rebuild's
store source reads the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.cases.state import NoteVisibility
from domain.values import Severity
from entrypoints.broker import Broker
from entrypoints.rebuilds import CaseEventsFromStore
from relay.relay import Relay
from tests.integration.relay_support import RunningRelay, headers, last_position, wait_for
from tests.integration.topic_support import consume
from tests.integration.write_side import AGENT, open_request, register_organisation
from tests.kafka import ON_BOTH_BROKERS

pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
FROM_API = c.Origin(
    api_key_id="5b1e9c",
    client_address="10.1.2.3",
    request_id="req-1",
    traceparent=TRACEPARENT,
    tracestate="congo=t61rcWkgMzE",
)
ORIGIN = {
    "ce_casebookclient",
    "ce_casebookaddress",
    "ce_casebookrequestid",
    "ce_traceparent",
    "ce_tracestate",
}


@pytest.fixture
def casebook(clean_database: Database) -> Iterator[Casebook]:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    yield casebook
    casebook.close()


def test_records_of_api_commands_carry_their_origin_and_the_store_source_reads_the_same(
    casebook: Casebook, clean_database: Database, kafka_broker: Broker
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)  # no origin, as from the command line
    from_api = c.CommandContext(AGENT, origin=FROM_API)
    casebook.execute(c.AssignSeverity(case_id, Severity.B), from_api)
    casebook.execute(c.AddNote(case_id, "MX fixed", NoteVisibility.INTERNAL), from_api)
    settings = Settings(
        database_url=clean_database.url,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=3,
    )
    expected = last_position(clean_database)
    running = RunningRelay(
        Relay(
            casebook.store,
            clean_database,
            settings,
            bootstrap_servers=kafka_broker.bootstrap_servers,
        )
    )
    try:
        assert wait_for(lambda: running.relay.position() == expected, timeout=30)
    finally:
        running.close()

    published = {
        headers(r)["ce_id"]: headers(r)
        for r in consume(kafka_broker.bootstrap_servers, running.relay.topic, expected)
    }
    assert len(published) == expected == 4
    without = [f"{organisation}:1", f"{case_id}:1"]
    assert all(not ORIGIN & published[ce_id].keys() for ce_id in without)
    for version in (2, 3):
        h = published[f"{case_id}:{version}"]
        assert (h["ce_casebookclient"], h["ce_casebookaddress"], h["ce_casebookrequestid"]) == (
            "5b1e9c",
            "10.1.2.3",
            "req-1",
        )
        # The CloudEvents distributed-tracing extension, as the API request gave it.
        assert (h["ce_traceparent"], h["ce_tracestate"]) == (TRACEPARENT, "congo=t61rcWkgMzE")
    # A rebuild from the store replays exactly what the relay published, origins included.
    from_store = {
        raw.ce_id: {name: value.decode() for name, value in raw.headers}
        for batch in CaseEventsFromStore(clean_database, settings).batches({})
        for raw in batch
    }
    assert from_store == published
