"""The Apache Kafka runtime (entrypoints/apache_kafka.py): real brokers resolved with Maven.

What tansu cannot show is what these prove: true end offsets, data that survives a
restart, acks=all that survives the crash of a partition leader in a 3-node cluster,
and SCRAM over TLS. Each module-scoped cluster starts once; tests use topics of their own.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from entrypoints.apache_kafka import (
    ApacheKafkaCluster,
    BrokerUnavailable,
    apache_kafka,
    resolve_kafka,
)

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def single() -> Iterator[ApacheKafkaCluster]:
    """One Apache Kafka node for the module."""
    with apache_kafka(1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def trio() -> Iterator[ApacheKafkaCluster]:
    """Three nodes (three voters, three replicas) for the module."""
    with apache_kafka(3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def secured() -> Iterator[ApacheKafkaCluster]:
    """One node with a SASL_SSL listener and a SCRAM user besides PLAINTEXT."""
    with apache_kafka(1, sasl_ssl=True) as cluster:
        yield cluster


def new_topic(
    cluster: ApacheKafkaCluster,
    partitions: int = 3,
    replication: int = 1,
    configs: dict[str, str] | None = None,
) -> str:
    """A topic of its own for a test, created over PLAINTEXT."""
    topic = f"test-{uuid.uuid4().hex[:10]}"
    with KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers) as admin:
        admin.create_topics(
            {
                topic: {
                    "num_partitions": partitions,
                    "replication_factor": replication,
                    "configs": configs or {},
                }
            },
            wait_for_metadata=True,
        )
    return topic


def poll_until(consumer: KafkaConsumer, count: int, timeout_s: float = 30) -> list[ConsumerRecord]:
    """Records polled until `count` arrived or the timeout passed, in arrival order."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    return records


def produce(cluster: ApacheKafkaCluster, topic: str, values: list[str]) -> dict[int, int]:
    """Send `values` (keyed, acks=all, idempotent); the count acknowledged per partition."""
    per_partition: dict[int, int] = {}
    with KafkaProducer(
        bootstrap_servers=cluster.bootstrap_servers, acks="all", enable_idempotence=True
    ) as producer:
        futures = [
            producer.send(topic, key=f"case-{i % 7}".encode(), value=value.encode())
            for i, value in enumerate(values)
        ]
        producer.flush()
        for future in futures:
            partition = future.get(timeout=30).partition
            per_partition[partition] = per_partition.get(partition, 0) + 1
    return per_partition


# -- a single broker ------------------------------------------------------------------------


def test_a_group_consumer_reads_what_was_produced_and_end_offsets_count_it(
    single: ApacheKafkaCluster,
) -> None:
    topic = new_topic(single)
    values = [f"event-{i}" for i in range(30)]
    acked = produce(single, topic, values)

    with KafkaConsumer(
        topic,
        bootstrap_servers=single.bootstrap_servers,
        group_id=f"group-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    ) as consumer:
        records = poll_until(consumer, len(values))
        consumer.commit()
        partitions = [TopicPartition(topic, p) for p in range(3)]
        end_offsets = consumer.end_offsets(partitions)
        committed = {tp.partition: consumer.committed(tp) for tp in partitions}

    assert sorted(r.value.decode() for r in records) == sorted(values)
    assert {tp.partition: offset for tp, offset in end_offsets.items()} == {
        p: acked.get(p, 0) for p in range(3)
    }
    assert committed == {p: acked.get(p, 0) or None for p in range(3)}


def test_records_survive_a_restart_on_the_same_port(single: ApacheKafkaCluster) -> None:
    topic = new_topic(single, partitions=1)
    produce(single, topic, ["before"])
    servers = single.bootstrap_servers

    single.restart()

    assert single.running
    assert single.bootstrap_servers == servers
    produce(single, topic, ["after"])
    with KafkaConsumer(
        bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False
    ) as consumer:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        values = [r.value for r in poll_until(consumer, 2)]
        assert consumer.end_offsets([partition]) == {partition: 2}
    assert values == [b"before", b"after"]


def test_empty_drops_every_topic_and_keeps_the_port(single: ApacheKafkaCluster) -> None:
    topic = new_topic(single, partitions=1)
    produce(single, topic, ["gone soon"])
    servers = single.bootstrap_servers

    single.empty()

    assert single.bootstrap_servers == servers
    with KafkaAdminClient(bootstrap_servers=servers) as admin:
        assert topic not in admin.list_topics()


def test_a_node_that_cannot_start_fails_with_its_output_and_leaves_no_jvm() -> None:
    cluster = ApacheKafkaCluster(1)
    # A listener on the node's port before start: Kafka cannot bind it and exits.
    port = int(cluster.bootstrap_servers.rsplit(":", 1)[1])
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        with pytest.raises(BrokerUnavailable, match="node 1") as raised:
            cluster.start()
        assert "its output:" in str(raised.value)
        assert "(no output)" not in str(raised.value)
        assert not cluster.node_running(1)
    finally:
        blocker.close()
        cluster.close()
    assert not cluster.directory.exists()


# -- three brokers --------------------------------------------------------------------------


def test_three_nodes_register_and_each_is_a_voter(trio: ApacheKafkaCluster) -> None:
    with KafkaAdminClient(bootstrap_servers=trio.bootstrap_servers) as admin:
        cluster = admin.describe_cluster()
    assert trio.node_ids == [1, 2, 3]
    assert sorted(b["broker_id"] for b in cluster["brokers"]) == [1, 2, 3]
    assert cluster["controller_id"] in trio.node_ids
    assert len(trio.bootstrap_servers.split(",")) == 3


def test_acks_all_survives_the_kill_of_the_partition_leader(trio: ApacheKafkaCluster) -> None:
    topic = new_topic(trio, partitions=1, replication=3, configs={"min.insync.replicas": "2"})
    leader = trio.leader_of(topic, 0)
    assert leader in trio.node_ids
    produce(trio, topic, [f"before-{i}" for i in range(20)])

    trio.kill_node(leader)
    assert not trio.node_running(leader)
    assert not trio.running
    # The producer retries through the election; with two replicas left, min ISR 2 holds.
    produce(trio, topic, [f"after-{i}" for i in range(20)])
    new_leader = trio.leader_of(topic, 0)

    with KafkaConsumer(
        bootstrap_servers=trio.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    ) as consumer:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        values = [r.value.decode() for r in poll_until(consumer, 40)]
        end = consumer.end_offsets([partition])[partition]

    trio.start_node(leader)
    assert trio.running

    assert new_leader in trio.node_ids and new_leader != leader
    assert values == [f"before-{i}" for i in range(20)] + [f"after-{i}" for i in range(20)]
    assert end == 40


def test_a_cleanly_stopped_node_rejoins_and_catches_up(trio: ApacheKafkaCluster) -> None:
    topic = new_topic(trio, partitions=1, replication=3, configs={"min.insync.replicas": "2"})
    follower = next(n for n in trio.node_ids if n != trio.leader_of(topic, 0))
    trio.stop_node(follower)
    produce(trio, topic, ["while-away"])
    trio.start_node(follower)

    # Back in the in-sync replicas: it fetched what was written while it was away.
    deadline = time.monotonic() + 60
    isr: list[int] = []
    while time.monotonic() < deadline:
        with KafkaAdminClient(bootstrap_servers=trio.bootstrap_servers) as admin:
            (described,) = admin.describe_topics([topic])
        isr = described["partitions"][0]["isr_nodes"]
        if follower in isr:
            break
        time.sleep(0.5)
    assert follower in isr


# -- SASL_SSL with SCRAM --------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
def test_scram_over_tls_round_trip(secured: ApacheKafkaCluster, mechanism: str) -> None:
    topic = new_topic(secured, partitions=1)
    options = secured.sasl_ssl_client_options(mechanism)
    assert options["security_protocol"] == "SASL_SSL"
    assert secured.ca_file is not None and secured.ca_file.is_file()

    with KafkaProducer(acks="all", **options) as producer:
        producer.send(topic, b"secret-hello").get(timeout=30)
    with KafkaConsumer(
        topic,
        group_id=f"group-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        # On a loaded machine the first metadata answer may come before the partition has
        # a leader on this listener; without this the next look is minutes away.
        metadata_max_age_ms=1000,
        **options,
    ) as consumer:
        records = poll_until(consumer, 1, timeout_s=60)
    assert [r.value for r in records] == [b"secret-hello"]


def test_a_wrong_scram_password_is_refused(secured: ApacheKafkaCluster) -> None:
    options = secured.sasl_ssl_client_options() | {"sasl_plain_password": "not-the-password"}
    # kafka-python 3.0 sees only a dropped connection (no SaslAuthenticationFailedError) and
    # retries until its bootstrap timeout; the broker's log says why it refused.
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_timeout_ms=3000, **options)
    output = secured.output_file(1).read_text()
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in output


def test_plaintext_listener_stays_open_beside_sasl_ssl(secured: ApacheKafkaCluster) -> None:
    assert secured.sasl_ssl_bootstrap_servers != secured.bootstrap_servers
    topic = new_topic(secured, partitions=1)
    assert produce(secured, topic, ["plain"]) == {0: 1}


# -- resolution and process hygiene ---------------------------------------------------------


def test_resolution_is_cached_and_missing_tools_are_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lib = resolve_kafka()
    assert any(lib.glob("kafka_2.13-*.jar"))
    assert resolve_kafka() == lib

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerUnavailable, match="apt-get install openjdk-17-jre-headless maven"):
        resolve_kafka(tmp_path / "cache")


def test_ctrl_c_of_the_cli_stops_every_jvm() -> None:
    cli = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.apache_kafka", "--brokers", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert cli.stdout is not None
        line = cli.stdout.readline()
        assert line.startswith("bootstrap servers: 127.0.0.1:")
        jvms = psutil.Process(cli.pid).children(recursive=True)
        assert jvms
        cli.send_signal(signal.SIGINT)
        assert cli.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(jvms, timeout=10)
        assert alive == []
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_a_sigkilled_parent_takes_its_jvms_along(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from entrypoints.apache_kafka import ApacheKafkaCluster\n"
        "cluster = ApacheKafkaCluster(1)\n"
        "cluster.start()\n"
        "print('directory', cluster.directory, flush=True)\n"
        "time.sleep(600)\n"
    )
    errors = tmp_path / "stderr"
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=errors.open("wb"),
        text=True,
    )
    try:
        assert parent.stdout is not None
        # structlog's default logger prints to stdout too; skip its lines.
        line = ""
        while not line.startswith("directory ") and parent.poll() is None:
            line = parent.stdout.readline()
        directory = Path(line.removeprefix("directory ").strip())
        assert directory.name.startswith("casebook-kafka-"), errors.read_text()[-3000:]
        jvms = psutil.Process(parent.pid).children(recursive=True)
        assert jvms
    finally:
        parent.kill()
        parent.wait()
    _, alive = psutil.wait_procs(jvms, timeout=10)
    shutil.rmtree(directory, ignore_errors=True)  # atexit never ran: SIGKILL
    assert alive == []
