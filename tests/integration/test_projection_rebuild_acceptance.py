"""Acceptance of blue/green rebuilds on a running system, against real PostgreSQL and tansu.

Everything runs as in production, on threads: the write side, the relay, the SLA tracker
(consumer, timer, outbox publisher) and the audit trail (consumer, checkpointer, outbox
publisher). A rebuild of each projection, from Kafka or from the store, equals the tables
it replaces after a 10,000-event run; rebuilt while commands keep arriving, the live
projections lose nothing, carry on after the switch-over, and equal a later rebuild from
scratch.
"""

from __future__ import annotations

import pytest

from casebook.database import Database
from consumers.rebuild import Outcome, Source
from entrypoints.broker import Broker
from entrypoints.rebuilds import compare
from tests.integration.relay_support import stored_ids
from tests.integration.system_support import (
    Writer,
    assert_log_intact_and_nothing_dead,
    caught_up,
    count,
    rebuild,
    running_system,
    wait_until_caught_up,
)
from tests.integration.workload_support import (
    projected_versions,
    query,
    store_cases,
    store_versions,
)
from tests.kafka import ON_BOTH_BROKERS

# Long scenarios: the default server only (the rebuild's SQL runs on both in
# test_projection_rebuild).
pytestmark = [pytest.mark.integration, pytest.mark.slow, ON_BOTH_BROKERS]


def test_rebuilds_of_a_10000_event_history_equal_the_tables_they_replace(
    clean_database: Database, own_broker: Broker
) -> None:
    with running_system(clean_database, own_broker) as system:
        organisation_id = store_cases(system.casebook, cases=500, events_per_case=20)
        assert count(clean_database, "SELECT count(*) FROM casebook_events") >= 10_000
        wait_until_caught_up(system, organisation_id)
        sla_events = count(clean_database, "SELECT count(*) FROM casebook_sla_outbox")
        assert sla_events >= 500

        runs: tuple[tuple[str, Source], ...] = (
            ("sla", "kafka"),
            ("audit", "kafka"),
            ("sla", "store"),
        )
        for name, source in runs:
            outcome = rebuild(system, name, source)
            assert outcome.dead_letters == 0
            assert outcome.events >= 10_000, (name, source, outcome)
            assert compare(clean_database, name, outcome.archive) == [], (name, source)

        assert_log_intact_and_nothing_dead(clean_database)
        # Still equal to the history after the switch-overs: nothing lost or added.
        assert caught_up(clean_database, organisation_id)


def test_rebuilds_while_commands_keep_arriving_lose_nothing_and_the_consumers_carry_on(
    clean_database: Database, own_broker: Broker
) -> None:
    with running_system(clean_database, own_broker) as system:
        organisation_id = store_cases(system.casebook, cases=60, events_per_case=15)
        wait_until_caught_up(system, organisation_id)

        writer = Writer(system.casebook, organisation_id)
        switched: dict[str, Outcome] = {}
        try:
            writer.wait_for_more(5)
            # Both ways of switching over: reaching the live offsets on Kafka, and
            # finishing from the store under the live group's lock.
            sources: tuple[Source, ...] = ("kafka", "store")
            for source in sources:
                for name in ("sla", "audit"):
                    during = len(writer.opened)
                    switched[name] = rebuild(system, name, source)
                    assert switched[name].dead_letters == 0
                    assert len(writer.opened) > during, "no command arrived during the rebuild"
            after_switch = len(writer.opened)
            writer.wait_for_more(10)
        finally:
            opened = writer.stop()
        issued_after_switch = opened[after_switch:]
        assert issued_after_switch

        wait_until_caught_up(system, organisation_id)
        # Nothing lost: every stored case at its stored version, one audit entry per stored
        # event and per SLA event, and the cases opened after the switch-overs among them.
        projected = projected_versions(clean_database)
        assert projected == store_versions(clean_database, organisation_id)
        assert {str(case_id) for case_id in issued_after_switch} <= set(projected)
        audited = query(clean_database, "SELECT stream, event_id FROM casebook_audit_entries")
        outbox = query(clean_database, "SELECT event_id FROM casebook_sla_outbox")
        assert sorted(e for s, e in audited if s != "sla") == sorted(stored_ids(clean_database))
        assert sorted(e for s, e in audited if s == "sla") == sorted(e for (e,) in outbox)
        assert_log_intact_and_nothing_dead(clean_database)

        # The live tables equal a rebuild from scratch done now, from the store: the live
        # ones (the first rebuild's, carried on by the live consumers) go to its archive.
        for name in ("sla", "audit"):
            later = rebuild(system, name, "store")
            assert later.archive != switched[name].archive
            assert compare(clean_database, name, later.archive) == [], name
        assert_log_intact_and_nothing_dead(clean_database)
