"""Which running node leads a partition: what fault tests ask before killing that node."""

from __future__ import annotations

import time
from collections.abc import Collection

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from entrypoints.apache_kafka.nodes import POLL_INTERVAL_S, Node
from entrypoints.broker import BrokerUnavailable


def wait_for_leader(nodes: Collection[Node], topic: str, partition: int, timeout_s: float) -> int:
    """The running one of `nodes` that leads `topic`'s `partition`, waiting up to `timeout_s`.

    `nodes` is read afresh on every try (pass a live view), so a node that stops or starts
    meanwhile counts. See ApacheKafkaCluster.leader_of.
    """
    deadline = time.monotonic() + timeout_s
    seen = "nothing"
    while True:
        live = [n for n in nodes if n.running]
        if not live:
            raise BrokerUnavailable("no node of the cluster is running")
        try:
            leader = _describe_leader(",".join(n.address for n in live), topic, partition)
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
