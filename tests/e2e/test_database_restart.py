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
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from casebook.broker import free_port
from casebook.database import Database
from casebook.demo import DEMO_CASE, DEMO_EMAIL, DEMO_ORGANISATION, DEMO_PHONE
from casebook.settings import Settings
from relay.cloudevents import topic_name
from tests.directories import private_directory
from tests.e2e.commands import Command, casebook, deployed_env
from tests.e2e.outages import RestartableDatabase, restartable_database
from tests.e2e.test_make_run import wait_until_healthy
from tests.integration.test_broker_loss import read_topic
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


class Agents:
    """Opens cases and adds notes, one request after another, until closed.

    Every request is sent with an Idempotency-Key and retried until the API accepts it:
    a 503 while the database is away is an answer an agent's client retries.
    """

    def __init__(self, base: str, key: str) -> None:
        self.accepted: list[int] = []
        self.refused: list[int] = []
        self._client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        number = 0
        while not self._done.is_set():
            number += 1
            if number % 3 == 0:
                self._send("/cases", OPEN_CASE, f"open-{number}", expect=201)
            else:
                note = {"text": f"note {number}", "visibility": "internal"}
                self._send(f"/cases/{DEMO_CASE}/notes", note, f"note-{number}", expect=200)

    def _send(self, path: str, body: dict[str, Any], key: str, expect: int) -> None:
        while not self._done.is_set():
            try:
                answer = self._client.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                self._done.wait(0.2)
                continue
            if answer.status_code == expect:
                self.accepted.append(answer.status_code)
                return
            assert answer.status_code == 503, answer.text  # anything else is a bug
            self.refused.append(answer.status_code)
            self._done.wait(0.2)

    def close(self) -> None:
        self._done.set()
        self._thread.join(30)
        self._client.close()


OPEN_CASE = {
    "organisation_id": str(DEMO_ORGANISATION),
    "requester_id": "demo-customer-admin",
    "channel": "phone",
    "caller_phone": DEMO_PHONE,
    "category": "technical",
    "title": "Calendar sync stopped",
    "description": "Since this morning no meeting reaches the phones.",
    "contact_phone": DEMO_PHONE,
    "contact_email": DEMO_EMAIL,
}


def banner_key(run: Command, role: str) -> str:
    lines = run.text().splitlines()
    return next(line.split()[1] for line in lines if line.strip().startswith(f"{role} "))


def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        time.sleep(0.5)


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
        part["state"] == "running" and part["failing_since"] is None for part in parts.values()
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
            wait_until(lambda: all_running_again(status(base, admin)), RECOVER_S, "parts back")
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
