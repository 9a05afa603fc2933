"""One Kafka node: its server.properties, storage format, launch, readiness and reaping.

Each node is a combined broker+controller JVM on free loopback ports with its data in a
directory of the cluster's temp dir. These functions do one node's (or every node's) part;
`ApacheKafkaCluster` (cluster.py) decides when.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from entrypoints.apache_kafka.install import java_executable
from entrypoints.apache_kafka.processes import file_tail, kill_group, popen
from entrypoints.broker import HOST, BrokerUnavailable

# One logger for the package: every kafka.apache.* event names the same logger.
log = structlog.get_logger(__package__)

FORMAT_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.2

_TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")

SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")

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


@dataclass
class Node:
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


def node_properties(
    node: Node,
    nodes: Sequence[Node],
    *,
    ca_file: Path | None,
    keystore_file: Path | None,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """`node`'s server.properties in a cluster of `nodes` (every one a voter), `extra` last."""
    brokers = len(nodes)
    replication = str(min(3, brokers))
    min_isr = "1" if brokers == 1 else "2"
    voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in nodes)
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
    if node.sasl_ssl_port is not None and ca_file and keystore_file:
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        properties |= {
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(SCRAM_MECHANISMS),
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": jaas,
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(keystore_file),
            "listener.name.sasl_ssl.ssl.truststore.type": "PEM",
            "listener.name.sasl_ssl.ssl.truststore.location": str(ca_file),
        }
    properties |= extra
    return properties


def format_storage(
    nodes: Iterable[Node],
    lib: Path,
    *,
    cluster_dir: Path,
    cluster_id: str,
    properties: Callable[[Node], Mapping[str, str]],
    sasl_username: str | None,
    sasl_password: str | None,
) -> None:
    """Write configs and run `kafka-storage format` for every node, in parallel."""
    (cluster_dir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
    formats: list[tuple[Node, subprocess.Popen[bytes]]] = []
    try:
        for node in nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            lines = [f"{key}={_escape(value)}" for key, value in properties(node).items()]
            node.properties_file.write_text("\n".join(lines) + "\n")
            command = [
                java_executable(),
                *_TOOL_JVM_OPTIONS,
                *_log4j_option(cluster_dir),
                "-cp",
                f"{lib}/*",
                "kafka.tools.StorageTool",
                "format",
                # One argument: an id that starts with "-" (one in 32) is not an option.
                f"--cluster-id={cluster_id}",
                "--config",
                str(node.properties_file),
            ]
            if sasl_password is not None:
                for mechanism in SCRAM_MECHANISMS:
                    user = f"[name={sasl_username},password={sasl_password}]"
                    command += ["--add-scram", f"{mechanism}={user}"]
            formats.append((node, _popen(node, command)))
        deadline = time.monotonic() + FORMAT_TIMEOUT_S
        for node, process in formats:
            try:
                code = process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise failure(node, f"storage format took over {FORMAT_TIMEOUT_S:.0f} s") from None
            if code != 0:
                raise failure(node, f"storage format failed (exit {code})")
    finally:
        for _, process in formats:
            if process.poll() is None:
                kill_group(process)


def launch(node: Node, lib: Path, *, cluster_dir: Path, jvm_options: Sequence[str]) -> None:
    """Start the node's JVM (not waiting for it; see wait_ready)."""
    command = [
        java_executable(),
        *jvm_options,
        *_log4j_option(cluster_dir),
        "-cp",
        f"{lib}/*",
        "kafka.Kafka",
        str(node.properties_file),
    ]
    node.process = _popen(node, command)


def wait_ready(nodes: list[Node], deadline: float, *, cluster_id: str, timeout_s: float) -> None:
    """Return once every node is ready (see _node_ready); BrokerUnavailable on exit or timeout.

    `timeout_s` is only for the message: `deadline` is the time.monotonic() to give up at.
    """
    pending = list(nodes)
    last_error = "no answer yet"
    while pending:
        for node in pending:
            if not node.running:
                code = node.process.returncode if node.process is not None else None
                raise failure(node, f"exited during start (exit {code})")
        try:
            pending = [node for node in pending if not _node_ready(node, cluster_id)]
            last_error = "not yet registered and unfenced"
        except (OSError, KafkaError) as error:
            last_error = f"{type(error).__name__}: {error}"
        if not pending:
            return
        if time.monotonic() > deadline:
            raise failure(pending[0], f"was not ready in {timeout_s:.0f} s ({last_error})")
        time.sleep(POLL_INTERVAL_S)


def _node_ready(node: Node, cluster_id: str) -> bool:
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
    if cluster["cluster_id"] != cluster_id:
        raise BrokerUnavailable(
            f"another Kafka (cluster {cluster['cluster_id']!r}) holds {node.address}"
        )
    return any(
        broker["broker_id"] == node.node_id and not broker.get("is_fenced", False)
        for broker in cluster["brokers"]
    )


def reap(node: Node, deadline: float) -> None:
    """Wait for the node's JVM to exit until `deadline` (time.monotonic()), then SIGKILL it."""
    process = node.process
    if process is None:
        return
    try:
        process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        log.warning("kafka.apache.stop_timeout", node_id=node.node_id, pid=process.pid)
        kill_group(process)
    node.process = None


def failure(node: Node, what: str) -> BrokerUnavailable:
    """The error for a node that `what` (failed somehow), with the tail of its output."""
    tail = file_tail(node.output_file)
    return BrokerUnavailable(
        f"Apache Kafka node {node.node_id} on {node.address} {what}; its output:\n{tail}"
    )


def _popen(node: Node, command: list[str]) -> subprocess.Popen[bytes]:
    return popen(command, output_file=node.output_file, cwd=node.directory)


def _log4j_option(cluster_dir: Path) -> list[str]:
    return [f"-Dlog4j2.configurationFile={cluster_dir / 'log4j2.properties'}"]


def _escape(value: str) -> str:
    """A value for a Java .properties file (backslashes are escapes there)."""
    return value.replace("\\", "\\\\")
