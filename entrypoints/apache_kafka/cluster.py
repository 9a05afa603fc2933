"""`ApacheKafkaCluster`: one Apache Kafka node, or three for fault tests, and its lifecycle.

Start, stop, restart, empty and close the whole cluster; kill, stop and start one node;
find a partition's leader. What one node needs (its config, storage format, JVM, readiness)
is in nodes.py, the leader lookup in leaders.py; every cluster still open at exit is killed
by an atexit hook here. It stays one module, over 300 lines: it is one class, the interface
tests and benches hold, and each method is already a few lines of decisions over those
modules; splitting the class itself (mixins) would scatter the state every method shares.
"""

from __future__ import annotations

import atexit
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import structlog

from entrypoints.apache_kafka.install import resolve_kafka
from entrypoints.apache_kafka.leaders import wait_for_leader
from entrypoints.apache_kafka.nodes import (
    Node,
    format_storage,
    launch,
    node_properties,
    reap,
    wait_ready,
)
from entrypoints.apache_kafka.ports import free_ports, new_cluster_id
from entrypoints.apache_kafka.processes import file_tail, kill_group, signal_group
from entrypoints.apache_kafka_tls import make_tls_files
from entrypoints.broker import HOST, BrokerUnavailable

# One logger for the package: every kafka.apache.* event names the same logger.
log = structlog.get_logger(__package__)

START_TIMEOUT_S = 60.0
"""Three JVMs starting at once on a busy 2-core machine; one node is ready in a few seconds."""
STOP_TIMEOUT_S = 20.0
"""A clean shutdown (SIGTERM) gets this long before SIGKILL."""
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

SASL_USERNAME = "casebook"


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
        self._nodes: dict[int, Node] = {}
        for index in range(brokers):
            node_id = index + 1
            node_ports = ports[index::brokers]
            self._nodes[node_id] = Node(
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
        return file_tail(self._node(node_id).output_file)

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
            signal_group(node.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for node in nodes:
            reap(node, deadline)
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
        signal_group(node.process, signal.SIGKILL)
        node.process.wait()
        node.process = None
        log.info("kafka.apache.node_killed", node_id=node_id)

    def stop_node(self, node_id: int) -> None:
        """Shut one node down cleanly (SIGTERM) and wait, killing it after STOP_TIMEOUT_S."""
        node = self._node(node_id)
        if node.process is None:
            return
        started = time.perf_counter()
        signal_group(node.process, signal.SIGTERM)
        reap(node, time.monotonic() + STOP_TIMEOUT_S)
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
        return wait_for_leader(self._nodes.values(), topic, partition, timeout_s)

    # -- internals --------------------------------------------------------------------------

    def _node(self, node_id: int) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise KeyError(f"no node {node_id}; the nodes are {self.node_ids}") from None

    def _lib(self) -> Path:
        if self._lib_dir is None:
            self._lib_dir = resolve_kafka()
        return self._lib_dir

    def _properties(self, node: Node) -> dict[str, str]:
        return node_properties(
            node,
            list(self._nodes.values()),
            ca_file=self.ca_file,
            keystore_file=self._keystore_file,
            extra=self._extra_properties,
        )

    def _format(self, lib: Path) -> None:
        """Make the TLS files if asked for, then format every node's storage (nodes.py)."""
        if self.sasl_ssl and self.ca_file is None:
            tls = make_tls_files(self.directory / "tls")
            self.ca_file = tls.ca_file
            self._keystore_file = tls.keystore_file
        format_storage(
            self._nodes.values(),
            lib,
            cluster_dir=self.directory,
            cluster_id=self.cluster_id,
            properties=self._properties,
            sasl_username=self.sasl_username,
            sasl_password=self.sasl_password,
        )
        self._formatted = True

    def _launch(self, node: Node, lib: Path) -> None:
        launch(node, lib, cluster_dir=self.directory, jvm_options=self.jvm_options)

    def _wait_ready(self, nodes: list[Node], deadline: float) -> None:
        wait_ready(nodes, deadline, cluster_id=self.cluster_id, timeout_s=self.start_timeout_s)

    def _kill_all(self) -> None:
        for node in self._nodes.values():
            if node.process is not None:
                kill_group(node.process)
                node.process = None


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
