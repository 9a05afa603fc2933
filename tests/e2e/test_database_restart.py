"""PostgreSQL restarted under load: every part notices, says so, and resumes by itself.

`casebook run` (API, relay, SLA tracker, audit trail in one process) and the standalone
`relay`, `consume sla` and `consume audit` all use a server the test owns. While agents
keep writing, the test stops the server for a few seconds and starts it again, as an
operator's restart does. `/readyz` and the status route must say so and recover, no
process may exit, and at the end the store, the topic, the SLA tracker and the audit
trail must agree (`casebook projections check`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from casebook.database import Database
from casebook.settings import Settings
from entrypoints.broker import free_port
from relay.cloudevents import topic_name
from tests.directories import private_directory
from tests.e2e.agents import Agents, banner_key, wait_until
from tests.e2e.commands import casebook, deployed_env
from tests.e2e.outages import RestartableDatabase, restartable_database
from tests.e2e.run_support import wait_until_healthy
from tests.integration.topic_support import read_topic
from tests.kafka import ON_BOTH_BROKERS, RunningBroker

pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]
OUTAGE_S = 4.0
NOTICE_S = 60.0  # for /readyz and the status route to say the database is gone
RECOVER_S = 180.0  # a busy 2-core machine; each part retries at most every 30 s
SETTLE_S = 240.0


@pytest.fixture
def database() -> Iterator[tuple[RestartableDatabase, Database]]:
    with (
        private_directory("casebook-test-restart-") as directory,
        restartable_database(directory) as pair,
    ):
        yield pair


def readiness(base: str) -> int:
    try:
        return httpx.get(f"{base}/readyz", timeout=5).status_code
    except httpx.TransportError:
        return 0


def healthz(base: str) -> httpx.Response:
    return httpx.get(f"{base}/healthz", timeout=5)


def status(base: str, admin: str) -> dict[str, Any]:
    answer = httpx.get(f"{base}/status", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def own_parts(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {part["part"]: part for part in body["parts"] if part["process"] == body["process"]}


def all_running_again(body: dict[str, Any]) -> bool:
    parts = own_parts(body)
    return bool(parts) and all(
        part["state"] in {"running", "standby"} and part["failing_since"] is None
        for part in parts.values()
    )


def checks_pass(env: dict[str, str], data_home: Path) -> bool:
    """`casebook projections check sla` and `audit` both say complete."""
    for name in ("sla", "audit"):
        result = subprocess.run(
            [str(Path(sys.executable).parent / "casebook"), "projections", "check", name],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            (data_home / f"check-{name}.txt").write_text(result.stdout + result.stderr)
            return False
    return True


def relay_caught_up(db: Database) -> bool:
    with psycopg.connect(db.url) as conn:
        row = conn.execute(
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM casebook_events),"
            " (SELECT coalesce(max(position), 0) FROM casebook_relay_positions)"
        ).fetchone()
    assert row is not None
    return bool(row[0] == row[1])


def test_a_database_restart_under_load_is_noticed_and_survived(
    database: tuple[RestartableDatabase, Database],
    own_broker: RunningBroker,
    data_home: Path,
) -> None:
    server, db = database
    port = free_port()
    env = deployed_env(db, data_home, own_broker) | {
        "CASEBOOK_API_PORT": str(port),
        "CASEBOOK_PART_RETRY_MAX_SECONDS": "5",
        "CASEBOOK_PART_UNHEALTHY_SECONDS": "2",
    }
    base = f"http://127.0.0.1:{port}"
    with (
        casebook(["run"], env, data_home / "run.log") as run,
        casebook(["relay"], env, data_home / "relay.log") as relay,
        casebook(["consume", "sla"], env, data_home / "sla.log") as sla,
        casebook(["consume", "audit"], env, data_home / "audit.log") as audit,
    ):
        standalone = {"relay": relay, "consume sla": sla, "consume audit": audit}
        wait_until_healthy(base)
        run.wait_for("consumer.partitions.assigned", count=2)
        admin, agent = banner_key(run, "admin"), banner_key(run, "agent")
        wait_until(lambda: all_running_again(status(base, admin)), NOTICE_S, "parts running")
        agents = Agents(base, agent)
        try:
            wait_until(lambda: len(agents.accepted) >= 20, NOTICE_S, "writes before")

            server.stop()
            wait_until(lambda: readiness(base) == 503, NOTICE_S, "/readyz 503")
            # The parts of `casebook run` say they are failing, the database's error named.
            wait_until(
                lambda: any(
                    part["failing_since"] and part["last_error"]
                    for part in own_parts(status(base, admin)).values()
                ),
                NOTICE_S,
                "a part failing on the status route",
            )
            down = status(base, admin)
            # Failing for longer than part_unhealthy_seconds (2 s here): unhealthy.
            wait_until(lambda: healthz(base).status_code == 503, NOTICE_S, "/healthz 503")
            health = healthz(base)
            time.sleep(OUTAGE_S)
            server.start()

            wait_until(lambda: readiness(base) == 200, RECOVER_S, "/readyz 200 again")
            before = len(agents.accepted)
            wait_until(lambda: len(agents.accepted) >= before + 20, RECOVER_S, "writes after")
            seen: list[dict[str, Any]] = []
            try:
                wait_until(
                    lambda: (
                        all_running_again(seen_now := status(base, admin))
                        or bool(seen.append(seen_now))
                    ),
                    RECOVER_S,
                    "parts back",
                )
            except AssertionError:
                parts = own_parts(seen[-1]).values() if seen else []
                raise AssertionError(f"parts not back: {[p for p in parts]}") from None
        finally:
            agents.close()
        wait_until(lambda: healthz(base).status_code == 200, RECOVER_S, "/healthz 200")

        wait_until(lambda: relay_caught_up(db), SETTLE_S, "relay at the store's end")
        wait_until(lambda: checks_pass(env, data_home), SETTLE_S, "SLA and audit complete")
        for name, command in standalone.items():
            assert command.process.poll() is None, f"{name} exited:\n{command.text()[-2000:]}"
        # Standalone processes reported their own parts, and they are running again.
        wait_until(
            lambda: (
                {"relay", "sla-consumer", "audit-consumer"}
                <= {
                    p["part"]
                    for p in status(base, admin)["parts"]
                    if p["process"] != down["process"]
                }
            ),
            NOTICE_S,
            "standalone parts on the status route",
        )
        for command in (*standalone.values(), run):
            command.stop(signal.SIGINT)

    failing = [part for part in own_parts(down).values() if part["failing_since"]]
    print(f"while down: {[(p['part'], p['last_error']) for p in failing]}")
    print(f"writes accepted {len(agents.accepted)}, refused with 503 {len(agents.refused)}")
    assert health.headers["content-type"].startswith("application/problem+json")
    assert health.json()["rule"] == "parts-healthy"
    assert agents.refused, "no write was refused while the database was down"
    # Every stored case event reached the topic exactly as stored.
    settings = Settings(kafka_bootstrap_servers=own_broker.bootstrap_servers)
    records = read_topic(settings, topic_name(settings.topic_prefix))
    with psycopg.connect(db.url) as conn:
        stored = conn.execute("SELECT count(*) FROM casebook_events").fetchone()
    assert stored is not None
    assert len({r["ce_id"] for r in records}) == stored[0]


def test_a_standalone_consumer_gives_up_after_the_outage_limit_in_one_line(
    database: tuple[RestartableDatabase, Database],
    own_broker: RunningBroker,
    data_home: Path,
) -> None:
    server, db = database
    env = deployed_env(db, data_home, own_broker) | {
        "CASEBOOK_PART_RETRY_MAX_SECONDS": "1",
        "CASEBOOK_OUTAGE_LIMIT_SECONDS": "3",
    }
    with casebook(["consume", "sla"], env, data_home / "sla.log") as sla:
        sla.wait_for("consumer.partitions.assigned")
        server.stop()
        try:
            code = sla.process.wait(NOTICE_S)
        finally:
            server.start()

    assert code == 1, sla.text()[-2000:]
    errors = [line for line in sla.text().splitlines() if line.startswith("casebook: error")]
    assert len(errors) == 1, sla.text()[-2000:]
    assert "failed for" in errors[0] and "outage_limit_seconds 3" in errors[0]
    # The first failure's traceback is inside its JSON log line; none is printed raw.
    assert not [line for line in sla.text().splitlines() if line.startswith("Traceback")]


def test_a_standalone_relay_started_while_the_database_is_down_waits_for_it(
    database: tuple[RestartableDatabase, Database],
    own_broker: RunningBroker,
    data_home: Path,
) -> None:
    server, db = database
    env = deployed_env(db, data_home, own_broker)
    server.stop()
    try:
        with casebook(["relay"], env, data_home / "relay.log") as relay:
            relay.wait_for("database.waiting")
            time.sleep(2)
            assert relay.process.poll() is None, relay.text()[-2000:]
            server.start()
            relay.wait_for("relay.following")
            relay.stop(signal.SIGINT)
    finally:
        if not readiness_of(db):
            server.start()


def test_ctrl_c_while_waiting_for_the_database_ends_the_command_cleanly(
    database: tuple[RestartableDatabase, Database],
    own_broker: RunningBroker,
    data_home: Path,
) -> None:
    server, db = database
    env = deployed_env(db, data_home, own_broker)
    server.stop()
    try:
        with casebook(["consume", "audit"], env, data_home / "audit.log") as audit:
            audit.wait_for("database.waiting")
            audit.stop(signal.SIGINT)
    finally:
        server.start()
    assert not audit.error_lines()


def readiness_of(db: Database) -> bool:
    try:
        with psycopg.connect(db.url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False
