"""A real Apache Kafka (KRaft) for tests and benches, resolved from Maven Central with `mvn`.

tansu (casebook/broker.py) is quick but not Kafka: no real end offsets, no transactions, no
replication. This module runs the genuine broker where that matters: one node, or three
for fault tests (kill the leader of a partition, see acks=all survive), with an optional
SASL_SSL/SCRAM listener. Its interface mirrors `casebook.broker.Broker` so a fixture can
take either.

The jars come from tools/kafka/pom.xml through `mvn dependency:copy-dependencies` into a
cache (./var/kafka/<version>/lib, or $CASEBOOK_KAFKA_CACHE/<version>/lib) once; every later
start reuses them. Each node is a combined broker+controller on free loopback ports with its
data in a temp dir that `close()` deletes. The JVMs run in sessions of their own, are killed
by an atexit hook, and (with util-linux's setpriv) die with this process even on SIGKILL, so
a failed or interrupted test run leaves no orphan JVM behind.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import fcntl
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from casebook.apache_kafka_tls import make_tls_files
from casebook.broker import HOST, BrokerUnavailable

__all__ = [
    "KAFKA_VERSION",
    "ApacheKafkaCluster",
    "BrokerUnavailable",
    "apache_kafka",
    "main",
    "resolve_kafka",
]

log = structlog.get_logger(__name__)

KAFKA_VERSION = "4.1.1"
"""Passed to the pom as -Dkafka.version; the cache directory is named after it."""

START_TIMEOUT_S = 60.0
"""Three JVMs starting at once on a busy 2-core machine; one node is ready in a few seconds."""
STOP_TIMEOUT_S = 20.0
"""A clean shutdown (SIGTERM) gets this long before SIGKILL."""
FORMAT_TIMEOUT_S = 60.0
RESOLVE_TIMEOUT_S = 900.0
POLL_INTERVAL_S = 0.2

DEFAULT_JVM_OPTIONS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    # One GC thread and no C2 compiler: on 2 cores shared by three JVMs and the tests, both
    # cut start-up and CPU use; test-sized traffic never needs C2's peak throughput.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)
"""Benches that measure the broker itself may pass their own (e.g. without TieredStopAtLevel)."""
_TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")

SASL_USERNAME = "casebook"
SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")

_INSTALL_HINT = (
    "Apache Kafka needs Java 17+ and Maven: apt-get install openjdk-17-jre-headless maven"
)
_REPO_ROOT = Path(__file__).resolve().parents[1]
POM = _REPO_ROOT / "tools" / "kafka" / "pom.xml"
_TAIL_BYTES = 8192
_TAIL_LINES = 15
_STACK_FRAME = re.compile(r"\s+(at |\.\.\. \d+ more)")

# Kafka's INFO is the useful level for a failure's tail, minus the config dumps (hundreds of
# lines each time a config object is built) and per-request logging.
_LOG4J2_PROPERTIES = """\
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def default_cache_dir() -> Path:
    """$CASEBOOK_KAFKA_CACHE, else ./var/kafka of the repository (git-ignored)."""
    configured = os.environ.get("CASEBOOK_KAFKA_CACHE")
    return Path(configured) if configured else _REPO_ROOT / "var" / "kafka"


def java_executable() -> str:
    """The `java` on PATH; BrokerUnavailable with the install line when there is none."""
    java = shutil.which("java")
    if java is None:
        raise BrokerUnavailable(f"no `java` on PATH; {_INSTALL_HINT}")
    return java


def resolve_kafka(cache_dir: Path | None = None) -> Path:
    """The directory of Kafka's jars (`<cache>/<version>/lib`), running mvn the first time.

    The jars are copied into a scratch directory renamed into place only when mvn succeeded,
    so an existing lib directory is always complete; a file lock keeps parallel test workers
    from resolving twice.
    """
    java_executable()
    version_dir = (cache_dir if cache_dir is not None else default_cache_dir()) / KAFKA_VERSION
    lib = version_dir / "lib"
    if lib.is_dir():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerUnavailable(f"no `mvn` on PATH to fetch Kafka {KAFKA_VERSION}; {_INSTALL_HINT}")
    if not POM.is_file():
        raise BrokerUnavailable(f"{POM} is missing: resolve_kafka needs a source checkout")
    version_dir.mkdir(parents=True, exist_ok=True)
    with open(version_dir / ".resolve.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_dir():  # another process finished while we waited
            return lib
        started = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix="lib-", dir=version_dir))
        try:
            _run_mvn(mvn, scratch)
            if not (scratch / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
                raise BrokerUnavailable(f"mvn succeeded but copied no kafka_2.13 jar to {scratch}")
            scratch.rename(lib)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    log.info(
        "kafka.apache.resolved",
        version=KAFKA_VERSION,
        lib=str(lib),
        jars=len(list(lib.glob("*.jar"))),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )
    return lib


def _run_mvn(mvn: str, output_dir: Path) -> None:
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        f"-Dkafka.version={KAFKA_VERSION}",
    ]
    with tempfile.TemporaryFile() as output:
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=RESOLVE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BrokerUnavailable(
                f"mvn did not resolve Kafka {KAFKA_VERSION} in {RESOLVE_TIMEOUT_S:.0f} s"
            ) from None
        if result.returncode != 0:
            output.seek(0)
            tail = _tail_text(output.read())
            raise BrokerUnavailable(
                f"mvn could not resolve Kafka {KAFKA_VERSION} (exit {result.returncode}); "
                f"its output:\n{tail}"
            )


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody uses now, below the kernel's ephemeral range.

    A port from bind(0) is an ephemeral one: between choosing it and the JVM binding it
    (a second or more), any outgoing connection on the machine, our own readiness probes
    included, may take it as its local port, and a probe of a port nobody listens on yet
    can even connect to itself. Below the ephemeral range neither can happen. Each port is
    checked by binding it; all stay bound until the last is chosen, so none repeats.
    """
    low, high = _SAFE_PORTS
    rng = random.SystemRandom()
    sockets: list[socket.socket] = []
    misses = 0
    try:
        while len(sockets) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # After many taken ports in a row (a crowded range), the kernel's choice will do.
            safe = low < high and misses < 200
            try:
                sock.bind((HOST, rng.randint(low, high) if safe else 0))
            except OSError:
                sock.close()
                misses += 1
                continue
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _safe_port_range() -> tuple[int, int]:
    """10000 up to the start of the ephemeral range; (0, 0) means 'let the kernel choose'."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return (0, 0)
    return (10_000, ephemeral_low - 1) if ephemeral_low > 12_000 else (0, 0)


_SAFE_PORTS = _safe_port_range()


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64 without padding (22 chars)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


@dataclass
class _Node:
    """One combined broker+controller JVM; ports and directory survive restarts."""

    node_id: int
    port: int
    controller_port: int
    sasl_ssl_port: int | None
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def output_file(self) -> Path:
        return self.directory / "output.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ApacheKafkaCluster:
    """`brokers` Apache Kafka nodes (1 or 3) in KRaft combined mode on free loopback ports.

    Nothing runs until `start()`; `stop()` and `restart()` keep the data (unlike tansu),
    `close()` deletes it. Node ids are 1..brokers.
    """

    kind = "apache"

    def __init__(
        self,
        brokers: int = 1,
        *,
        sasl_ssl: bool = False,
        lib_dir: Path | None = None,
        jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS,
        broker_properties: Mapping[str, str] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        # Three voters tolerate one lost node; two would tolerate none, so fault tests need 3.
        if brokers not in (1, 3):
            raise ValueError(f"brokers must be 1 or 3, not {brokers}")
        self.brokers = brokers
        self.sasl_ssl = sasl_ssl
        self.jvm_options = tuple(jvm_options)
        self.start_timeout_s = start_timeout_s
        self.cluster_id = new_cluster_id()
        self._lib_dir = lib_dir
        self._extra_properties = dict(broker_properties or {})
        self._formatted = False
        self._closed = False
        self.directory = Path(tempfile.mkdtemp(prefix="casebook-kafka-"))
        ports = free_ports(brokers * (3 if sasl_ssl else 2))
        self._nodes: dict[int, _Node] = {}
        for index in range(brokers):
            node_id = index + 1
            node_ports = ports[index::brokers]
            self._nodes[node_id] = _Node(
                node_id=node_id,
                port=node_ports[0],
                controller_port=node_ports[1],
                sasl_ssl_port=node_ports[2] if sasl_ssl else None,
                directory=self.directory / f"node-{node_id}",
            )
        self.bootstrap_servers = ",".join(node.address for node in self._nodes.values())
        self.sasl_ssl_bootstrap_servers: str | None = None
        self.ca_file: Path | None = None
        self._keystore_file: Path | None = None
        self.sasl_username: str | None = None
        self.sasl_password: str | None = None
        if sasl_ssl:
            self.sasl_ssl_bootstrap_servers = ",".join(
                f"{HOST}:{node.sasl_ssl_port}" for node in self._nodes.values()
            )
            self.sasl_username = SASL_USERNAME
            self.sasl_password = secrets.token_urlsafe(18)
        _LIVE.add(self)

    # -- state ------------------------------------------------------------------------------

    @property
    def node_ids(self) -> list[int]:
        """The nodes' ids (each is both broker id and controller id)."""
        return list(self._nodes)

    @property
    def running(self) -> bool:
        """True while every node's JVM is alive (after kill_node/stop_node it is False)."""
        return all(node.running for node in self._nodes.values())

    def node_running(self, node_id: int) -> bool:
        """True while that node's JVM is alive."""
        return self._node(node_id).running

    def node_bootstrap_servers(self, node_id: int) -> str:
        """host:port of one node's PLAINTEXT listener."""
        return self._node(node_id).address

    def output_file(self, node_id: int) -> Path:
        """The node's captured stdout/stderr (Kafka logs at INFO), until `close()`."""
        return self._node(node_id).output_file

    def output_tail(self, node_id: int) -> str:
        """The last lines of the node's output, for error messages."""
        try:
            with open(self._node(node_id).output_file, "rb") as output:
                output.seek(0, os.SEEK_END)
                output.seek(max(0, output.tell() - _TAIL_BYTES))
                return _tail_text(output.read())
        except OSError:
            return "(no output)"

    def sasl_ssl_client_options(self, mechanism: str = "SCRAM-SHA-512") -> dict[str, Any]:
        """kafka-python keyword arguments for the SASL_SSL listener as the SCRAM user."""
        if not self.sasl_ssl:
            raise ValueError("this cluster was made without sasl_ssl=True")
        return {
            "bootstrap_servers": self.sasl_ssl_bootstrap_servers,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": self.sasl_password,
            "ssl_cafile": str(self.ca_file),
        }

    # -- whole cluster ----------------------------------------------------------------------

    def start(self) -> None:
        """Start every node not running; return once all are registered and unfenced.

        The first start formats the storage. A node that exits, or a cluster not ready in
        `start_timeout_s`, stops everything and raises BrokerUnavailable with output.
        """
        if self._closed:
            raise BrokerUnavailable("this Apache Kafka cluster was closed")
        if self.running:
            return
        started = time.perf_counter()
        lib = self._lib()
        try:
            if not self._formatted:
                self._format(lib)
            waiting = [node for node in self._nodes.values() if not node.running]
            for node in waiting:
                self._launch(node, lib)
            self._wait_ready(waiting, time.monotonic() + self.start_timeout_s)
        except BaseException:
            self._kill_all()
            raise
        log.info(
            "kafka.apache.started",
            brokers=self.brokers,
            bootstrap_servers=self.bootstrap_servers,
            sasl_ssl_bootstrap_servers=self.sasl_ssl_bootstrap_servers,
            pids=[node.process.pid for node in waiting if node.process is not None],
            elapsed_ms=round((time.perf_counter() - started) * 1000),
        )

    def stop(self) -> None:
        """Shut every node down cleanly (SIGTERM, all at once), killing any that lingers."""
        started = time.perf_counter()
        nodes = [node for node in self._nodes.values() if node.process is not None]
        for node in nodes:
            _signal_group(node, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for node in nodes:
            self._reap(node, deadline)
        if nodes:
            log.info(
                "kafka.apache.stopped",
                brokers=self.brokers,
                elapsed_ms=round((time.perf_counter() - started) * 1000),
            )

    def restart(self) -> None:
        """Stop and start on the same ports; topics and records survive (the data dir stays)."""
        self.stop()
        self.start()

    def empty(self) -> None:
        """Start afresh on the same ports with no topics or records (like tansu's restart).

        Kill, delete every node's data, format again (same cluster id, SCRAM user and
        certificates) and start: cheaper than a new cluster and no client config changes.
        """
        self._kill_all()
        for node in self._nodes.values():
            shutil.rmtree(node.directory / "data", ignore_errors=True)
        self._formatted = False
        self.start()

    def close(self) -> None:
        """Kill every node and delete the data and output; the object is done after this.

        SIGKILL, not a clean stop: nothing that is about to be deleted needs flushing.
        """
        if self._closed:
            return
        self._closed = True
        self._kill_all()
        shutil.rmtree(self.directory, ignore_errors=True)
        _LIVE.discard(self)

    # -- one node (fault tests) -------------------------------------------------------------

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would; returns once the process is gone."""
        node = self._node(node_id)
        if node.process is None:
            return
        _signal_group(node, signal.SIGKILL)
        node.process.wait()
        node.process = None
        log.info("kafka.apache.node_killed", node_id=node_id)

    def stop_node(self, node_id: int) -> None:
        """Shut one node down cleanly (SIGTERM) and wait, killing it after STOP_TIMEOUT_S."""
        node = self._node(node_id)
        if node.process is None:
            return
        started = time.perf_counter()
        _signal_group(node, signal.SIGTERM)
        self._reap(node, time.monotonic() + STOP_TIMEOUT_S)
        log.info(
            "kafka.apache.node_stopped",
            node_id=node_id,
            elapsed_ms=round((time.perf_counter() - started) * 1000),
        )

    def start_node(self, node_id: int) -> None:
        """Start a stopped or killed node on its ports and data; return once it is back in."""
        node = self._node(node_id)
        if self._closed:
            raise BrokerUnavailable("this Apache Kafka cluster was closed")
        if node.running:
            return
        if not self._formatted:
            raise BrokerUnavailable("start() the cluster before start_node()")
        started = time.perf_counter()
        self._launch(node, self._lib())
        try:
            self._wait_ready([node], time.monotonic() + self.start_timeout_s)
        except BaseException:
            self.kill_node(node_id)
            raise
        log.info(
            "kafka.apache.node_started",
            node_id=node_id,
            elapsed_ms=round((time.perf_counter() - started) * 1000),
        )

    def leader_of(self, topic: str, partition: int, timeout_s: float = 30.0) -> int:
        """The running node that leads `topic`'s `partition`, waiting up to `timeout_s` for one.

        Waiting covers what a fault test meets: a new topic not yet in every broker's metadata,
        an election under way, and a killed leader still listed until its session times out.
        Raises LookupError when no running node leads it in time.
        """
        deadline = time.monotonic() + timeout_s
        seen = "nothing"
        while True:
            live = [n for n in self._nodes.values() if n.running]
            if not live:
                raise BrokerUnavailable("no node of the cluster is running")
            try:
                leader = self._describe_leader(",".join(n.address for n in live), topic, partition)
                seen = f"leader {leader}"
                if leader in {n.node_id for n in live}:
                    return leader
            except (OSError, KafkaError, LookupError) as error:
                seen = f"{type(error).__name__}: {error}"
            if time.monotonic() > deadline:
                raise LookupError(
                    f"no running node leads {topic!r} partition {partition} after "
                    f"{timeout_s:.0f} s (last seen: {seen})"
                )
            time.sleep(POLL_INTERVAL_S)

    @staticmethod
    def _describe_leader(bootstrap_servers: str, topic: str, partition: int) -> int:
        with KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            bootstrap_timeout_ms=5000,
            request_timeout_ms=5000,
        ) as admin:
            topics = admin.describe_topics([topic])
        for described in topics:
            if described["name"] != topic:
                continue
            for part in described["partitions"]:
                if part["partition_index"] == partition:
                    leader: int = part["leader_id"]
                    return leader
        raise LookupError(f"{topic!r} has no partition {partition} (yet)")

    # -- internals --------------------------------------------------------------------------

    def _node(self, node_id: int) -> _Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise KeyError(f"no node {node_id}; the nodes are {self.node_ids}") from None

    def _lib(self) -> Path:
        if self._lib_dir is None:
            self._lib_dir = resolve_kafka()
        return self._lib_dir

    def _properties(self, node: _Node) -> dict[str, str]:
        replication = str(min(3, self.brokers))
        min_isr = "1" if self.brokers == 1 else "2"
        voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self._nodes.values())
        listeners = [f"PLAINTEXT://{node.address}", f"CONTROLLER://{HOST}:{node.controller_port}"]
        advertised = [f"PLAINTEXT://{node.address}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        if node.sasl_ssl_port is not None:
            listeners.append(f"SASL_SSL://{HOST}:{node.sasl_ssl_port}")
            advertised.append(f"SASL_SSL://{HOST}:{node.sasl_ssl_port}")
            protocols.append("SASL_SSL:SASL_SSL")
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            # Static voters: every port is known before start, and `storage format` needs
            # no --standalone/--initial-controllers (those are for dynamic quorums).
            "controller.quorum.voters": voters,
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": ",".join(protocols),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(node.directory / "data"),
            "num.partitions": "3",
            "default.replication.factor": replication,
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": min_isr,
            # 50 partitions each (the defaults) are slow to create with 3 replicas on 2 cores.
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.num.partitions": "5",
            "group.initial.rebalance.delay.ms": "0",
            # Consumer tests use 2 s sessions so a killed member is replaced quickly; the
            # broker's 6 s minimum would refuse them.
            "group.min.session.timeout.ms": "1000",
            # A killed node is fenced (and its partitions get new leaders) after the session
            # timeout; 9 s by default, 4 s here so fault tests do not wait for nothing.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "500",
        }
        if node.sasl_ssl_port is not None and self.ca_file and self._keystore_file:
            jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            properties |= {
                "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(SCRAM_MECHANISMS),
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
                "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": jaas,
                "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
                "listener.name.sasl_ssl.ssl.keystore.location": str(self._keystore_file),
                "listener.name.sasl_ssl.ssl.truststore.type": "PEM",
                "listener.name.sasl_ssl.ssl.truststore.location": str(self.ca_file),
            }
        properties |= self._extra_properties
        return properties

    def _format(self, lib: Path) -> None:
        """Write configs and run `kafka-storage format` for every node, in parallel."""
        if self.sasl_ssl and self.ca_file is None:
            tls = make_tls_files(self.directory / "tls")
            self.ca_file = tls.ca_file
            self._keystore_file = tls.keystore_file
        (self.directory / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
        formats: list[tuple[_Node, subprocess.Popen[bytes]]] = []
        try:
            for node in self._nodes.values():
                node.directory.mkdir(parents=True, exist_ok=True)
                lines = [f"{key}={_escape(value)}" for key, value in self._properties(node).items()]
                node.properties_file.write_text("\n".join(lines) + "\n")
                command = [
                    java_executable(),
                    *_TOOL_JVM_OPTIONS,
                    *self._log4j_option(),
                    "-cp",
                    f"{lib}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    # One argument: an id that starts with "-" (one in 32) is not an option.
                    f"--cluster-id={self.cluster_id}",
                    "--config",
                    str(node.properties_file),
                ]
                if self.sasl_password is not None:
                    for mechanism in SCRAM_MECHANISMS:
                        user = f"[name={self.sasl_username},password={self.sasl_password}]"
                        command += ["--add-scram", f"{mechanism}={user}"]
                formats.append((node, self._popen(node, command)))
            deadline = time.monotonic() + FORMAT_TIMEOUT_S
            for node, process in formats:
                try:
                    code = process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise self._failure(
                        node, f"storage format took over {FORMAT_TIMEOUT_S:.0f} s"
                    ) from None
                if code != 0:
                    raise self._failure(node, f"storage format failed (exit {code})")
        finally:
            for _, process in formats:
                if process.poll() is None:
                    _kill_group(process)
        self._formatted = True

    def _log4j_option(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}"]

    def _launch(self, node: _Node, lib: Path) -> None:
        command = [
            java_executable(),
            *self.jvm_options,
            *self._log4j_option(),
            "-cp",
            f"{lib}/*",
            "kafka.Kafka",
            str(node.properties_file),
        ]
        node.process = self._popen(node, command)

    def _popen(self, node: _Node, command: list[str]) -> subprocess.Popen[bytes]:
        # A session of its own: a terminal's Ctrl-C reaches only us, and close() kills the
        # whole group. setpriv's parent-death signal covers the case where we are SIGKILLed;
        # only from the main thread, because it fires when the *thread* that forked exits.
        prefix: list[str] = []
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            prefix = [setpriv, "--pdeathsig", "KILL", "--"]
        with open(node.output_file, "ab") as output:
            return subprocess.Popen(
                [*prefix, *command],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=node.directory,
                start_new_session=True,
            )

    def _wait_ready(self, nodes: list[_Node], deadline: float) -> None:
        pending = list(nodes)
        last_error = "no answer yet"
        while pending:
            for node in pending:
                if not node.running:
                    code = node.process.returncode if node.process is not None else None
                    raise self._failure(node, f"exited during start (exit {code})")
            try:
                pending = [node for node in pending if not self._node_ready(node)]
                last_error = "not yet registered and unfenced"
            except (OSError, KafkaError) as error:
                last_error = f"{type(error).__name__}: {error}"
            if not pending:
                return
            if time.monotonic() > deadline:
                raise self._failure(
                    pending[0], f"was not ready in {self.start_timeout_s:.0f} s ({last_error})"
                )
            time.sleep(POLL_INTERVAL_S)

    def _node_ready(self, node: _Node) -> bool:
        """True once the node itself serves requests and the cluster lists it unfenced.

        Bootstrapping from the node alone matters after kill_node: until its session times
        out, the controller still lists the dead incarnation as unfenced. A broker enables
        request processing only after it is unfenced, so its own answer proves it is back.
        """
        socket.create_connection((HOST, node.port), timeout=0.5).close()
        with KafkaAdminClient(
            bootstrap_servers=node.address,
            bootstrap_timeout_ms=2000,
            request_timeout_ms=3000,
            client_id=f"casebook-readiness-{node.node_id}",
        ) as admin:
            cluster = admin.describe_cluster()
        if cluster["cluster_id"] != self.cluster_id:
            raise BrokerUnavailable(
                f"another Kafka (cluster {cluster['cluster_id']!r}) holds {node.address}"
            )
        return any(
            broker["broker_id"] == node.node_id and not broker.get("is_fenced", False)
            for broker in cluster["brokers"]
        )

    def _reap(self, node: _Node, deadline: float) -> None:
        process = node.process
        if process is None:
            return
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("kafka.apache.stop_timeout", node_id=node.node_id, pid=process.pid)
            _kill_group(process)
        node.process = None

    def _kill_all(self) -> None:
        for node in self._nodes.values():
            if node.process is not None:
                _kill_group(node.process)
                node.process = None

    def _failure(self, node: _Node, what: str) -> BrokerUnavailable:
        tail = self.output_tail(node.node_id)
        return BrokerUnavailable(
            f"Apache Kafka node {node.node_id} on {node.address} {what}; its output:\n{tail}"
        )


def _escape(value: str) -> str:
    """A value for a Java .properties file (backslashes are escapes there)."""
    return value.replace("\\", "\\\\")


def _tail_text(data: bytes) -> str:
    """The last lines of JVM or mvn output, Java stack frames left out.

    A fatal error ends in a stack trace whose frames would push the message (the part that
    says what is wrong) out of any short tail.
    """
    lines = data.decode(errors="replace").strip().splitlines()
    kept = [line for line in lines if not _STACK_FRAME.match(line)]
    return "\n".join(kept[-_TAIL_LINES:]) or "(no output)"


def _signal_group(node: _Node, signum: signal.Signals) -> None:
    if node.process is not None and node.process.poll() is None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(node.process.pid, signum)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's group (it leads its own session) and reap it."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


_LIVE: set[ApacheKafkaCluster] = set()


@atexit.register
def _close_all() -> None:
    """Kill every cluster still open when the interpreter exits (a test run that failed)."""
    for cluster in list(_LIVE):
        with suppress(Exception):
            cluster.close()


@contextmanager
def apache_kafka(brokers: int = 1, **options: Any) -> Iterator[ApacheKafkaCluster]:
    """Run an Apache Kafka cluster for the block (see ApacheKafkaCluster); close it after."""
    cluster = ApacheKafkaCluster(brokers, **options)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m casebook.apache_kafka`: resolve, start, print where, run until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m casebook.apache_kafka",
        description="Run Apache Kafka (KRaft) on free loopback ports until Ctrl-C.",
    )
    parser.add_argument("--brokers", type=int, choices=(1, 3), default=1)
    parser.add_argument("--sasl-ssl", action="store_true", help="add a SASL_SSL/SCRAM listener")
    parser.add_argument(
        "--resolve-only", action="store_true", help="fetch the jars with mvn, print where, exit"
    )
    args = parser.parse_args(argv)

    from casebook.logging import configure_logging
    from casebook.settings import get_settings

    configure_logging(get_settings(), stream="stderr")

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGTERM (e.g. from a process manager) takes the same path as Ctrl-C: close() runs.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        lib = resolve_kafka()
        if args.resolve_only:
            print(lib, flush=True)
            return 0
        with apache_kafka(args.brokers, sasl_ssl=args.sasl_ssl, lib_dir=lib) as cluster:
            print(f"bootstrap servers: {cluster.bootstrap_servers}", flush=True)
            if cluster.sasl_ssl:
                print(f"SASL_SSL bootstrap servers: {cluster.sasl_ssl_bootstrap_servers}")
                print(f"SCRAM user: {cluster.sasl_username}  password: {cluster.sasl_password}")
                print(f"CA file: {cluster.ca_file}", flush=True)
            print("Ctrl-C stops the broker and deletes its data.", flush=True)
            while True:
                time.sleep(1)
                if not cluster.running:
                    for node_id in cluster.node_ids:
                        if not cluster.node_running(node_id):
                            tail = cluster.output_tail(node_id)
                            print(f"node {node_id} exited; its output:\n{tail}", file=sys.stderr)
                    return 1
    except KeyboardInterrupt:
        return 0
    except BrokerUnavailable as error:
        print(f"casebook.apache_kafka: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
