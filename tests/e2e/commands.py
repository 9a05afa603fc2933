"""`casebook ...` commands run as an operator runs them: each in a session of its own,
its output in a file, stopped with a signal to its process group as a terminal does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from casebook.database import Database
from tests.generous_limits import GENEROUS_LIMITS
from tests.kafka import RunningBroker
from tests.master_key import MASTER_KEY_VARIABLE
from tests.signing_key import new_signing_key_file

# The clean-stop promise is 5 s. A 2-core machine shared with other runs gets three times
# that before a test fails; a stop that waits out join timeouts (30 s each) fails.
PROMISE_S = 5.0
WAIT_S = 3 * PROMISE_S
STARTUP_S = 90.0
# Helpers may outlive casebook by a moment: multiprocessing's resource tracker (serve
# --workers) leaves when it reads the end of its pipe, after casebook exited.
SETTLE_S = 2.0
# kafka-python 3.0.12 races its own close(): its network thread may still read or watch a
# socket the closing thread has just closed, and says so at level error (about one stop
# in fifteen here). By then the consumer has stored its batch and left its group, so this
# one known line is let through; any other error line fails the test.
KAFKA_CLOSE_RACE = ("object has no attribute 'recv'", "Invalid file descriptor: -1")


class Command:
    """One `casebook ...` process in a session of its own, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], output: Path) -> None:
        self.output = output
        with output.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "casebook"), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, object]]:
        """The JSON log lines of event `name`."""
        lines = [line for line in self.text().splitlines() if line.startswith("{")]
        return [event for event in map(json.loads, lines) if event.get("event") == name]

    def wait_for(self, event: str, count: int = 1) -> None:
        deadline = time.monotonic() + STARTUP_S
        while len(self.events(event)) < count:
            assert self.process.poll() is None, f"exited before {event}:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {event} in {STARTUP_S} s"
            time.sleep(0.1)

    def stop(self, signum: int) -> None:
        """Send `signum` to the process group as a terminal does; it must exit 0 in time."""
        started = time.monotonic()
        os.killpg(self.process.pid, signum)
        try:
            code = self.process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {WAIT_S} s after {signal.Signals(signum).name}")
        elapsed = time.monotonic() - started
        print(f"{signal.Signals(signum).name} -> exit {code} in {elapsed:.2f} s")
        assert code == 0, self.text()[-3000:]

    def error_lines(self) -> list[str]:
        """Lines logged at level error or above, tracebacks and one-line CLI errors."""
        found = []
        lines = self.text().splitlines()
        for index, line in enumerate(lines):
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("level") in {"error", "critical"} and not _close_race(event):
                    found.append(line)
            elif line.startswith("casebook: error"):
                found.append(line)
            elif line.startswith("Traceback"):
                # The whole traceback, so a failure says what was raised and where.
                found.append("\n".join(lines[index : index + 40]))
        return found


def _close_race(event: dict[str, object]) -> bool:
    logger, text = str(event.get("logger", "")), json.dumps(event)
    return logger.startswith("kafka.") and any(sign in text for sign in KAFKA_CLOSE_RACE)


@contextmanager
def casebook(args: list[str], env: dict[str, str], output: Path) -> Iterator[Command]:
    """`casebook ARGS` for the block; killed with its group if the test left it running."""
    command = Command(args, env, output)
    try:
        yield command
    finally:
        if command.process.poll() is None:
            os.killpg(command.process.pid, signal.SIGKILL)
            command.process.wait()


def clean_env(**settings: str) -> dict[str, str]:
    """The test's environment without its CASEBOOK_ settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBOOK_")}
    env |= GENEROUS_LIMITS  # agents write thousands of commands with one key
    env[MASTER_KEY_VARIABLE] = os.environ[MASTER_KEY_VARIABLE]  # the suite's servers are external
    return env | {f"CASEBOOK_{name.upper()}": value for name, value in settings.items()}


def descendants(command: Command) -> list[psutil.Process]:
    return list(psutil.Process(command.process.pid).children(recursive=True))


def left_behind(
    processes: list[psutil.Process], data_dir: Path, within: float = SETTLE_S
) -> list[psutil.Process]:
    """Which of `processes` still run `within` seconds from now, and any PostgreSQL on
    `data_dir`."""
    deadline = time.monotonic() + within
    while (running := _still_running(processes, data_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


def _still_running(processes: list[psutil.Process], data_dir: Path) -> list[psutil.Process]:
    running = [p for p in processes if _running(p)]
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(data_dir) in cmdline:
            running.append(process)
    return running


def tansu_on(port: int) -> list[psutil.Process]:
    """tansu processes listening on `port`."""
    return [
        process
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "tansu"
        and f"127.0.0.1:{port}" in " ".join(process.info["cmdline"] or [])
        and _running(process)
    ]


def _running(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def deployed_env(
    db: Database, data_home: Path, broker: RunningBroker | None = None
) -> dict[str, str]:
    """Settings of a deployment: an external database (and broker), a signing key file."""
    key = new_signing_key_file(data_home)
    settings = {
        "data_dir": str(data_home / "var"),
        "database_url": db.url,
        "audit_signing_key_file": str(key),
    }
    if broker is not None:
        settings |= {"kafka_bootstrap_servers": broker.bootstrap_servers}
        settings |= {"kafka_broker_kind": os.environ.get("CASEBOOK_KAFKA_BROKER_KIND", "tansu")}
    return clean_env(**settings)
