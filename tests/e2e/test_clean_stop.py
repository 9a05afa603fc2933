"""Stopping casebook: Ctrl-C or SIGTERM ends every part in seconds and leaves nothing behind.

Each command runs in a session of its own, as a terminal runs it, and the signal goes to
the whole process group, as a terminal's Ctrl-C does. A killed `casebook run` takes its
broker and its database with it, and the next one starts.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from casebook.database import Database, embedded_server, ensure_database
from entrypoints.broker import free_port
from entrypoints.demo import DEMO_CASE
from entrypoints.migrate import apply_migrations
from tests.directories import private_directory
from tests.e2e.commands import (
    WAIT_S,
    Command,
    casebook,
    clean_env,
    deployed_env,
    descendants,
    left_behind,
    tansu_on,
)
from tests.e2e.run_support import wait_until_healthy
from tests.kafka import RunningBroker

pytestmark = pytest.mark.integration
GONE_S = 15.0  # after kill -9: the database guard stops PostgreSQL, then leaves
SIGNALS = [pytest.param(signal.SIGINT, id="ctrl-c"), pytest.param(signal.SIGTERM, id="sigterm")]


def broker_port(run: Command) -> int:
    (started,) = run.events("broker.embedded.started")
    port = started["port"]
    assert isinstance(port, int)
    return port


class NoteWriter:
    """Adds notes to the demo case, one request after another, until the process is gone."""

    def __init__(self, base: str, agent_key: str) -> None:
        self.statuses: list[int] = []
        self._base, self._key = base, agent_key
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        headers = {"Authorization": f"Bearer {self._key}"}
        with httpx.Client(base_url=self._base, headers=headers, timeout=WAIT_S) as client:
            while not self._done.is_set():
                try:
                    answer = client.post(
                        f"/cases/{DEMO_CASE}/notes",
                        json={"text": "Still on it", "visibility": "internal"},
                    )
                except httpx.TransportError:
                    self._done.wait(0.05)  # stopped listening: expected once stopping
                    continue
                self.statuses.append(answer.status_code)

    def close(self) -> None:
        self._done.set()
        self._thread.join(WAIT_S)


@pytest.mark.parametrize("signum", SIGNALS)
def test_run_stops_promptly_and_leaves_nothing_running(data_home: Path, signum: int) -> None:
    port = free_port()
    data_dir = data_home / "var"
    env = clean_env(data_dir=str(data_dir), api_port=str(port))
    with casebook(["run"], env, data_home / "run.log") as run:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base)
        run.wait_for("consumer.partitions.assigned", count=2)  # the SLA tracker and the audit
        banner = run.text().splitlines()
        agent_key = next(line.split()[1] for line in banner if line.strip().startswith("agent "))
        parts, tansu = descendants(run), broker_port(run)
        writer = NoteWriter(base, agent_key)
        time.sleep(0.5)  # commands in flight when the signal arrives
        run.stop(signum)
        writer.close()

    assert writer.statuses and set(writer.statuses) == {200}, writer.statuses
    assert left_behind(parts, data_dir) == []
    assert tansu_on(tansu) == []
    assert not (errors := run.error_lines()), "\n\n".join(errors)


def test_a_killed_run_takes_its_broker_and_database_along(data_home: Path) -> None:
    port = free_port()
    data_dir = data_home / "var"
    env = clean_env(data_dir=str(data_dir), api_port=str(port))
    with casebook(["run"], env, data_home / "killed.log") as run:
        wait_until_healthy(f"http://127.0.0.1:{port}")
        parts, tansu = descendants(run), broker_port(run)
        assert tansu_on(tansu), "no tansu found for the running casebook"
        run.process.kill()
        run.process.wait()
        assert left_behind(parts, data_dir, within=GONE_S) == []
        assert tansu_on(tansu) == []

    with casebook(["run"], env, data_home / "again.log") as again:
        wait_until_healthy(f"http://127.0.0.1:{port}")
        again.stop(signal.SIGINT)


@pytest.fixture(scope="module")
def external_database() -> Iterator[Database]:
    """A migrated database on a PostgreSQL of the test's own, as a deployment has one."""
    with (
        private_directory("casebook-test-stop-") as directory,
        embedded_server(directory / "pg") as server,
    ):
        db = ensure_database(server, "casebook")
        apply_migrations(db)
        yield db


@pytest.mark.parametrize(
    ("args", "ready"),
    [
        (["relay"], "relay.following"),
        (["consume", "sla"], "consumer.partitions.assigned"),
        (["consume", "audit"], "consumer.partitions.assigned"),
    ],
    ids=["relay", "consume-sla", "consume-audit"],
)
def test_relay_and_consumers_stop_promptly_on_ctrl_c(
    args: list[str],
    ready: str,
    external_database: Database,
    own_broker: RunningBroker,
    data_home: Path,
) -> None:
    env = deployed_env(external_database, data_home, own_broker)
    with casebook(args, env, data_home / "command.log") as command:
        command.wait_for(ready)
        parts = descendants(command)
        command.stop(signal.SIGINT)

    assert left_behind(parts, data_home) == []
    assert not (errors := command.error_lines()), "\n\n".join(errors)


@pytest.mark.parametrize("signum", SIGNALS)
def test_serve_with_workers_stops_promptly(
    signum: int, external_database: Database, data_home: Path
) -> None:
    port = free_port()
    env = deployed_env(external_database, data_home)
    args = ["serve", "--workers", "2", "--port", str(port)]
    with casebook(args, env, data_home / "serve.log") as serve:
        serve.wait_for("Application startup complete.", count=2)
        wait_until_healthy(f"http://127.0.0.1:{port}")
        parts = descendants(serve)
        serve.stop(signum)

    assert left_behind(parts, data_home) == []
    assert not (errors := serve.error_lines()), "\n\n".join(errors)
