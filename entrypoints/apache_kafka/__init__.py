"""A real Apache Kafka (KRaft) for tests and benches, resolved from Maven Central with `mvn`.

tansu (entrypoints/broker.py) is quick but not Kafka: no real end offsets, no transactions, no
replication. This package runs the genuine broker where that matters: one node, or three
for fault tests (kill the leader of a partition, see acks=all survive), with an optional
SASL_SSL/SCRAM listener. Its interface mirrors `entrypoints.broker.Broker` so a fixture can
take either.

The jars come from tools/kafka/pom.xml through `mvn dependency:copy-dependencies` into a
cache (./var/kafka/<version>/lib, or $CASEBOOK_KAFKA_CACHE/<version>/lib) once; every later
start reuses them. Each node is a combined broker+controller on free loopback ports with its
data in a temp dir that `close()` deletes. The JVMs run in sessions of their own, are killed
by an atexit hook, and (with util-linux's setpriv) die with this process even on SIGKILL, so
a failed or interrupted test run leaves no orphan JVM behind.

The modules: install (java, mvn, the jar cache), ports (free ports, cluster ids), processes
(sessions, group kills, output tails), nodes (one node's config, format, launch, readiness),
cluster (`ApacheKafkaCluster`, `apache_kafka`), cli (`python -m entrypoints.apache_kafka`).
"""

from entrypoints.apache_kafka.cli import main
from entrypoints.apache_kafka.cluster import ApacheKafkaCluster, apache_kafka
from entrypoints.apache_kafka.install import KAFKA_VERSION, resolve_kafka
from entrypoints.broker import BrokerUnavailable

__all__ = [
    "KAFKA_VERSION",
    "ApacheKafkaCluster",
    "BrokerUnavailable",
    "apache_kafka",
    "main",
    "resolve_kafka",
]
