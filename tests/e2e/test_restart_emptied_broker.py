"""`casebook run` stopped under load and started again on a broker that lost everything.

The local broker keeps its topics in memory, so every restart of `casebook run` finds it
empty; on a cluster the same happens when topics are deleted or the cluster is rebuilt.
Agents keep writing across the restart. Afterwards the audit trail must hold an entry
for every stored case event and every SLA event, checked here by the test's own query
and by `casebook audit verify`; the SLA tracker must hold every case at its last version.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from casebook.database import EMBEDDED_DBNAME, embedded_server
from entrypoints.broker import free_port
from tests.e2e.agents import Agents, banner_key, wait_until
from tests.e2e.commands import Command, casebook, clean_env
from tests.e2e.run_support import wait_until_healthy
from tests.kafka import BROKER_KIND_VARIABLE, ON_BOTH_BROKERS, RunningBroker

pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]
WRITES_PER_RUN = 300
SETTLE_S = 300.0  # a busy 2-core machine re-reads a whole topic; correctness, not speed

# The oracle, independent of the code under test: stored events and SLA outbox rows
# without their audit entry (matched by event id, as the audit trail records them).
MISSING = """
SELECT 'case event ' || e.originator_id || ':' || e.originator_version
FROM casebook_events e
WHERE e.topic LIKE 'domain.cases.%' AND NOT EXISTS (
    SELECT 1 FROM casebook_audit_entries a
    WHERE a.event_id = e.originator_id::text || ':' || e.originator_version)
UNION ALL
SELECT 'sla event ' || o.event_id || ' (' || o.type || ')'
FROM casebook_sla_outbox o
WHERE NOT EXISTS (SELECT 1 FROM casebook_audit_entries a WHERE a.event_id = o.event_id)
"""
BEHIND_IN_SLA = """
SELECT e.originator_id FROM casebook_events e
WHERE e.topic LIKE 'domain.cases.%'
GROUP BY e.originator_id
HAVING max(e.originator_version) > coalesce(
    (SELECT s.version FROM casebook_sla_cases s WHERE s.case_id = e.originator_id), 0)
"""


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "casebook"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@contextmanager
def writing(base: str, run: Command) -> Iterator[Agents]:
    """Agents writing until the block ends, and at least WRITES_PER_RUN before it starts."""
    # Mostly openings, by several agents: each opening starts SLA clocks, so SLA events
    # are still on their way to the audit trail when the run stops.
    agents = Agents(base, banner_key(run, "agent"), agents=4, open_every=1)
    try:
        wait_until(lambda: len(agents.accepted) >= WRITES_PER_RUN, 120, "writes")
        yield agents
    finally:
        agents.close()


def rows(url: str, query: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(row[0]) for row in conn.execute(query).fetchall()]


def test_audit_and_sla_are_complete_after_a_restart_on_an_emptied_broker(
    own_broker: RunningBroker, data_home: Path, broker_kind: str
) -> None:
    port = free_port()
    env = clean_env(
        data_dir=str(data_home / "var"),
        api_port=str(port),
        kafka_bootstrap_servers=own_broker.bootstrap_servers,
    ) | {BROKER_KIND_VARIABLE: broker_kind}
    base = f"http://127.0.0.1:{port}"

    with casebook(["run"], env, data_home / "run1.log") as first:
        wait_until_healthy(base)
        first.wait_for("consumer.partitions.assigned", count=2)
        with writing(base, first):
            # Stopped with commands in flight.
            first.stop(signal.SIGINT)
    own_broker.empty()

    with casebook(["run"], env, data_home / "run2.log") as second:
        wait_until_healthy(base)
        second.wait_for("consumer.partitions.assigned", count=2)
        with writing(base, second):
            pass
        # The second run stays up while its pipeline catches up; the test joins its
        # embedded server to look.
        with embedded_server(data_home / "var" / "pg") as server:
            url = server.with_dbname(EMBEDDED_DBNAME).url
            try:
                wait_until(
                    lambda: not rows(url, MISSING) and not rows(url, BEHIND_IN_SLA),
                    SETTLE_S,
                    "every stored event audited and every case up to date in the SLA tracker",
                )
            except AssertionError:
                missing, behind = rows(url, MISSING), rows(url, BEHIND_IN_SLA)
                raise AssertionError(
                    f"{len(missing)} stored events without an audit entry"
                    f" ({sum('sla event' in m for m in missing)} of them SLA events),"
                    f" e.g. {missing[:3]}; {len(behind)} cases behind in the SLA tracker"
                ) from None
            verify = cli(env, "audit", "verify")
            second.stop(signal.SIGINT)

    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "intact" in verify.stdout
