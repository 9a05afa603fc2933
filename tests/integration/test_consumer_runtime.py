"""The consumer runtime against a real PostgreSQL and a real (tansu) broker."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from casebook.database import Database
from consumers.replay import replay
from entrypoints.broker import Broker
from projections.registry import PROJECTIONS
from tests.integration.conftest import CliRunner
from tests.integration.consumer_support import (
    WAIT_S,
    Crash,
    RecordingProjection,
    Running,
    Setup,
    applied,
    commit_kafka_offsets,
    consume_all,
    event,
    fetch,
    kafka_committed,
    make_setup,
    publish,
    recreate_topic,
    running,
    scalar,
    wait_for,
)
from tests.kafka import ON_BOTH_BROKERS

pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]


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


@pytest.mark.kafka_partitions(1)
def test_a_crash_mid_batch_neither_loses_nor_repeats_an_event(setup: Setup) -> None:
    projection = setup.projection()
    projection.crash_on_call = 2
    publish(setup, *[event("a", n) for n in range(1, 11)])
    crashed = Running(setup.runtime(projection, consumer_batch_max=3))
    crashed.thread.join(WAIT_S)
    assert isinstance(crashed.error, Crash)
    assert applied(setup, projection.name) == ["a:1", "a:2", "a:3"]
    with running(setup.runtime(projection)):
        assert wait_for(lambda: len(applied(setup, projection.name)) == 10, WAIT_S)
    assert applied(setup, projection.name) == [f"a:{n}" for n in range(1, 11)]


@pytest.mark.kafka_partitions(2)
def test_a_new_runtime_resumes_from_the_postgres_offsets_not_kafkas(setup: Setup) -> None:
    projection = setup.projection()
    publish(setup, *[event(f"case-{s}", n) for n in range(1, 4) for s in range(4)])
    # Kafka says everything was consumed; PostgreSQL knows nothing was applied.
    commit_kafka_offsets(setup, projection.name, {0: 1000, 1: 1000})
    with running(setup.runtime(projection)):
        assert wait_for(lambda: len(applied(setup, projection.name)) == 12, WAIT_S)
    # Now Kafka says nothing was consumed; PostgreSQL knows all 12 were.
    commit_kafka_offsets(setup, projection.name, {0: 0, 1: 0})
    publish(setup, *[event(f"case-{s}", 4) for s in range(4)])
    runtime = setup.runtime(projection)
    with running(runtime):
        assert wait_for(lambda: len(applied(setup, projection.name)) == 16, WAIT_S)
        assert wait_for(lambda: runtime.metrics.total_lag == 0, WAIT_S)
    assert (runtime.metrics.consumed, runtime.metrics.duplicates) == (4, 0)
    assert len(set(applied(setup, projection.name))) == 16
    assert sum(o or 0 for o in kafka_committed(setup, projection.name, 2).values()) == 16


def test_a_republished_event_is_dropped(setup: Setup) -> None:
    projection = setup.projection()
    publish(setup, *[event("case-1", n) for n in (1, 2, 3)])
    publish(setup, event("case-1", 2), event("case-1", 1), event("case-1", 4))
    runtime = setup.runtime(projection)
    with running(runtime):
        assert wait_for(lambda: len(applied(setup, projection.name)) == 4, WAIT_S)
        assert wait_for(lambda: runtime.metrics.consumed == 6, WAIT_S)
    assert applied(setup, projection.name) == ["case-1:1", "case-1:2", "case-1:3", "case-1:4"]
    assert runtime.metrics.duplicates == 2


def test_a_poison_event_parks_only_its_subject_and_replay_applies_the_waiting_events_in_order(
    setup: Setup, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    projection = setup.projection()
    projection.poison.add("a:2")
    monkeypatch.setitem(PROJECTIONS, projection.name, lambda _: projection)
    publish(setup, *[event("a", n) for n in (1, 2, 3, 4)], *[event("b", n) for n in (1, 2, 3)])
    runtime = setup.runtime(projection)
    with running(runtime):
        assert wait_for(lambda: len(applied(setup, projection.name, "b")) == 3, WAIT_S)
        assert wait_for(lambda: waiting(setup, "a") == 2, WAIT_S)
        assert wait_for(lambda: runtime.metrics.parked == 1, WAIT_S)
        assert applied(setup, projection.name, "a") == ["a:1"]
        listed = cli("dlq", "list", "--group", projection.name, db=setup.database)
        assert listed.code == 0
        [line] = listed.stdout.splitlines()
        assert " a  a:2  parked  waiting=2  attempts=1 " in line
        assert "Poison: cannot apply a:2" in line

        projection.poison.clear()  # the projection was fixed
        replayed = cli("dlq", "replay", "a", db=setup.database)
        assert replayed.code == 0, replayed.stderr
        assert "replayed dead letter" in replayed.stdout and "3 event(s) applied" in replayed.stdout
        publish(setup, event("a", 5), event("b", 4))
        assert wait_for(lambda: len(applied(setup, projection.name, "a")) == 5, WAIT_S)
        assert wait_for(lambda: len(applied(setup, projection.name, "b")) == 4, WAIT_S)
    assert applied(setup, projection.name, "a") == [f"a:{n}" for n in range(1, 6)]
    assert scalar(setup.database, "SELECT count(*) FROM casebook_consumer_parked") == 0
    assert scalar(setup.database, "SELECT resolution FROM casebook_consumer_dead_letters") == (
        "replayed"
    )


def test_replay_while_the_subjects_events_keep_arriving_applies_each_once_in_order(
    setup: Setup,
) -> None:
    projection = setup.projection()
    projection.poison.add("a:2")
    publish(setup, event("a", 1), event("a", 2), event("a", 3))
    with running(setup.runtime(projection, consumer_batch_max=2)):
        assert wait_for(lambda: waiting(setup, "a") == 1, WAIT_S)
        projection.poison.clear()
        publisher = threading.Thread(
            target=lambda: [publish(setup, event("a", n)) for n in range(4, 31)]
        )
        publisher.start()
        assert wait_for(lambda: waiting(setup, "a") >= 3, WAIT_S)
        outcome = replay(setup.database, projection, "a")
        publisher.join(WAIT_S)
        assert outcome.parked_again is None
        assert wait_for(lambda: len(applied(setup, projection.name)) >= 30, WAIT_S)
    assert applied(setup, projection.name) == [f"a:{n}" for n in range(1, 31)]
    assert waiting(setup, "a") == 0


def test_replay_with_skip_leaves_the_dead_letter_out(
    setup: Setup, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    projection = setup.projection()
    monkeypatch.setitem(PROJECTIONS, projection.name, lambda _: projection)
    # A payload that is not a JSON object: the envelope itself is poison.
    publish(setup, event("a", 1), event("a", 2, data=[1, 2]), event("a", 3))
    with running(setup.runtime(projection)):
        assert wait_for(lambda: waiting(setup, "a") == 1, WAIT_S)
        result = cli("dlq", "replay", "a", "--group", projection.name, "--skip", db=setup.database)
        assert result.code == 0, result.stderr
        publish(setup, event("a", 2), event("a", 4))  # a republished copy stays out
        assert wait_for(lambda: len(applied(setup, projection.name)) == 3, WAIT_S)
    assert applied(setup, projection.name) == ["a:1", "a:3", "a:4"]
    listed = cli("dlq", "list", "--all", db=setup.database)
    assert "  skipped  " in listed.stdout and "payload is not a JSON object" in listed.stdout
    assert cli("dlq", "list", db=setup.database).stdout == ""


def test_replay_that_fails_again_keeps_the_subject_parked(
    setup: Setup, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    projection = setup.projection()
    monkeypatch.setitem(PROJECTIONS, projection.name, lambda _: projection)
    publish(setup, event("a", 1, drop="ce_type"), event("a", 2))
    with running(setup.runtime(projection)):
        assert wait_for(lambda: waiting(setup, "a") == 1, WAIT_S)
    result = cli("dlq", "replay", "a", db=setup.database)
    assert result.code == 1
    assert result.stderr.startswith("casebook: error: dead letter ")
    assert "failed again: Poison: missing header(s) ce_type" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert waiting(setup, "a") == 1
    assert scalar(setup.database, "SELECT count(*) FROM casebook_consumer_parked") == 1
    assert applied(setup, projection.name) == []


def test_replay_parks_the_subject_again_on_a_waiting_event_that_fails(
    setup: Setup, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    projection = setup.projection()
    projection.poison.add("a:2")
    projection.failing.add("a:3")
    monkeypatch.setitem(PROJECTIONS, projection.name, lambda _: projection)
    publish(setup, *[event("a", n) for n in (1, 2, 3, 4)])
    with running(setup.runtime(projection)):
        assert wait_for(lambda: waiting(setup, "a") == 2, WAIT_S)
    projection.poison.clear()
    result = cli("dlq", "replay", "a", db=setup.database)
    assert result.code == 1
    assert "1 event(s) applied" in result.stdout
    assert "waiting event a:3 failed: RuntimeError: handler failed on a:3" in result.stderr
    assert applied(setup, projection.name) == ["a:1", "a:2"]
    assert waiting(setup, "a") == 1  # a:4, now behind a:3
    listed = cli("dlq", "list", "--all", db=setup.database).stdout.splitlines()
    assert [line.split("  ")[3:5] for line in listed] == [["a:2", "replayed"], ["a:3", "parked"]]


def test_replay_of_a_subject_that_is_not_parked_is_refused(
    setup: Setup, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    projection = setup.projection()
    monkeypatch.setitem(PROJECTIONS, projection.name, lambda _: projection)
    result = cli("dlq", "replay", "nobody", "--group", projection.name, db=setup.database)
    assert (result.code, result.stderr.count("\n")) == (1, 1)
    assert "is not parked in group" in result.stderr
    unknown = cli("dlq", "replay", "nobody", "--group", "nope", db=setup.database)
    assert unknown.code == 1 and "no projection named 'nope'" in unknown.stderr


def test_a_handler_that_keeps_failing_is_retried_then_dead_lettered(setup: Setup) -> None:
    projection = setup.projection()
    projection.failing.add("a:2")
    publish(setup, event("a", 1), event("a", 2), event("a", 3), event("b", 1))
    with running(setup.runtime(projection, consumer_max_attempts=3)):
        assert wait_for(lambda: waiting(setup, "a") == 1, WAIT_S)
        assert wait_for(lambda: len(applied(setup, projection.name, "b")) == 1, WAIT_S)
    assert projection.alone["a:2"] == 3
    assert applied(setup, projection.name, "a") == ["a:1"]
    attempts, error = fetch(
        setup.database, "SELECT attempts, error FROM casebook_consumer_dead_letters"
    )
    assert (attempts, error) == (3, "RuntimeError: handler failed on a:2")


def test_the_dead_letter_is_published_with_the_error_in_its_headers(setup: Setup) -> None:
    projection = setup.projection()
    publish(setup, event("a", 1, drop="ce_sequence"))
    with running(setup.runtime(projection)):
        assert wait_for(lambda: len(consume_all(setup, setup.dead_letter_topic)) == 1, WAIT_S)
    [record] = consume_all(setup, setup.dead_letter_topic)
    headers = {name: value.decode() for name, value in record.headers}
    assert headers["dlq_error"] == "Poison: missing header(s) ce_sequence"
    assert headers["dlq_group"] == projection.name
    assert headers["dlq_attempts"] == "1"
    assert headers["dlq_original_topic"] == setup.topic
    assert headers["ce_id"] == "a:1" and record.key == b"a"


@pytest.mark.kafka_partitions(1)
def test_stop_drains_the_batch_in_hand(setup: Setup) -> None:
    projection = setup.projection()
    projection.gate_on_call = 1
    publish(setup, *[event("a", n) for n in range(1, 6)])
    with running(setup.runtime(projection)) as thread:
        assert projection.entered.wait(WAIT_S)
        thread.stop.set()
        projection.release.set()
        thread.thread.join(WAIT_S)
        assert not thread.thread.is_alive()
    assert applied(setup, projection.name) == [f"a:{n}" for n in range(1, 6)]
    offsets = "SELECT next_offset FROM casebook_consumer_offsets WHERE consumer_group = %s"
    assert scalar(setup.database, offsets, projection.name) == 5


def test_two_runtimes_in_one_group_apply_everything_once_across_rebalances(setup: Setup) -> None:
    projection = setup.projection()
    subjects = [f"case-{s}" for s in range(9)]
    publish(setup, *[event(s, n) for n in (1, 2) for s in subjects])
    first, second = setup.runtime(projection), setup.runtime(projection)
    with running(first):
        assert wait_for(lambda: len(applied(setup, projection.name)) >= 1, WAIT_S)
        with running(second):
            publish(setup, *[event(s, n) for n in (3, 4) for s in subjects])
            assert wait_for(lambda: bool(second.metrics.assigned), WAIT_S)
            assert wait_for(lambda: len(applied(setup, projection.name)) == 36, WAIT_S)
            assert wait_for(
                lambda: len(first.metrics.assigned) + len(second.metrics.assigned) == 3, WAIT_S
            )
        # The second one left: the first takes every partition again.
        publish(setup, *[event(s, 5) for s in subjects])
        assert wait_for(lambda: len(applied(setup, projection.name)) == 45, WAIT_S)
        assert wait_for(lambda: len(first.metrics.assigned) == 3, WAIT_S)
    rows = applied(setup, projection.name)
    assert sorted(rows) == sorted(f"{s}:{n}" for n in range(1, 6) for s in subjects)
    for s in subjects:
        assert applied(setup, projection.name, s) == [f"{s}:{n}" for n in range(1, 6)]


@pytest.mark.kafka_partitions(1)
def test_metrics_report_lag_and_the_status_command_shows_it(setup: Setup, cli: CliRunner) -> None:
    projection = setup.projection()
    projection.gate_on_call = 2
    publish(setup, *[event("a", n) for n in range(1, 11)])
    runtime = setup.runtime(projection, consumer_batch_max=2)
    with running(runtime):
        assert projection.entered.wait(WAIT_S)  # one batch of 2 applied, the next held up
        assert runtime.metrics.lag == {(setup.topic, 0): 8}
        projection.release.set()
        assert wait_for(lambda: runtime.metrics.total_lag == 0, WAIT_S)
        assert wait_for(lambda: " lag=0 " in status(cli, setup, projection.name), WAIT_S)
        assert runtime.metrics.applied == 10
        assert runtime.metrics.events_per_second > 0
    assert status(cli, setup, projection.name).endswith("\nno consumer is running\n")


def status(cli: CliRunner, setup: Setup, group: str) -> str:
    result = cli("consumers", "status", "--group", group, db=setup.database)
    assert result.code == 0, result.stderr
    return result.stdout


def waiting(setup: Setup, subject: str) -> int:
    """Records of `subject` held back behind its dead letter."""
    count: int = scalar(
        setup.database,
        "SELECT count(*) FROM casebook_consumer_parked_events WHERE subject = %s",
        subject,
    )
    return count


def held_at_gap(setup: Setup, group: str) -> list[tuple[str, int]]:
    """(subject, expected sequence) of the group's subjects held at a gap."""
    with psycopg.connect(setup.database.url) as conn:
        rows = conn.execute(
            "SELECT subject, expected FROM casebook_consumer_waiting"
            " WHERE consumer_group = %s ORDER BY subject",
            (group,),
        ).fetchall()
    return [(subject, expected) for subject, expected in rows]


@pytest.mark.kafka_partitions(1)
def test_a_case_with_a_hole_waits_while_others_flow_and_goes_on_when_the_event_arrives(
    setup: Setup,
) -> None:
    projection = RecordingProjection(f"group-{uuid.uuid4().hex[:8]}", contiguous=True)
    publish(setup, event("a", 1), event("a", 2), event("a", 4), event("b", 1))
    publish(setup, event("a", 5), event("b", 2), event("b", 3))
    with running(setup.runtime(projection)):
        assert wait_for(lambda: len(applied(setup, projection.name, "b")) == 3, WAIT_S)
        assert wait_for(lambda: held_at_gap(setup, projection.name) == [("a", 3)], WAIT_S)
        assert applied(setup, projection.name, "a") == ["a:1", "a:2"]

        publish(setup, event("a", 3))
        assert wait_for(lambda: len(applied(setup, projection.name, "a")) == 5, WAIT_S)
    assert applied(setup, projection.name, "a") == ["a:1", "a:2", "a:3", "a:4", "a:5"]
    assert held_at_gap(setup, projection.name) == []
    assert (
        scalar(
            setup.database,
            "SELECT count(*) FROM casebook_consumer_waiting_events WHERE consumer_group = %s",
            projection.name,
        )
        == 0
    )


@pytest.mark.kafka_partitions(1)
def test_a_case_whose_missing_event_never_comes_is_parked_as_a_sequence_gap(
    setup: Setup,
) -> None:
    projection = RecordingProjection(f"group-{uuid.uuid4().hex[:8]}", contiguous=True)
    publish(setup, event("c", 1), event("c", 3), event("c", 4), event("d", 1))
    with running(setup.runtime(projection, consumer_gap_timeout_seconds=1.0)):
        assert wait_for(
            lambda: (
                scalar(
                    setup.database,
                    "SELECT count(*) FROM casebook_consumer_parked WHERE consumer_group = %s",
                    projection.name,
                )
                == 1
            ),
            WAIT_S,
        )
        publish(setup, event("d", 2))
        assert wait_for(lambda: len(applied(setup, projection.name, "d")) == 2, WAIT_S)
    assert applied(setup, projection.name, "c") == ["c:1"]
    error, ce_id, subject = fetch(
        setup.database,
        "SELECT error, ce_id, subject FROM casebook_consumer_dead_letters"
        " WHERE consumer_group = %s",
        projection.name,
    )
    assert error.startswith("sequence-gap: ")
    assert "for sequence 2" in error
    assert (ce_id, subject) == ("c:3", "c")
    held = scalar(
        setup.database,
        "SELECT array_agg(ce_id ORDER BY id) FROM casebook_consumer_parked_events"
        " WHERE consumer_group = %s AND subject = 'c'",
        projection.name,
    )
    assert held == ["c:4"]
    assert held_at_gap(setup, projection.name) == []


def test_a_consumer_restarted_on_an_emptied_topic_reads_it_again_and_skips_nothing_new(
    own_broker: Broker, clean_database: Database
) -> None:
    setup = make_setup(own_broker, clean_database, 1)
    projection = setup.projection()
    publish(setup, event("a", 1), event("a", 2), event("a", 3))
    with running(setup.runtime(projection)):
        assert wait_for(lambda: len(applied(setup, projection.name)) == 3, WAIT_S)
    own_broker.empty()  # the log the stored offset (3) points into is gone
    recreate_topic(setup)
    # What the relay republishes, then what is new: b and c land below offset 3.
    publish(setup, event("a", 1), event("b", 1), event("c", 1), event("a", 4))
    with running(setup.runtime(projection)):
        assert wait_for(lambda: len(applied(setup, projection.name)) == 6, WAIT_S)
    assert applied(setup, projection.name) == ["a:1", "a:2", "a:3", "b:1", "c:1", "a:4"]
