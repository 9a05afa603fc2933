"""What every bench runs on: PostgreSQL, a Kafka broker, and the options that choose them.

One place for these so that the benches agree: each defaults to an embedded PostgreSQL
in a temporary directory (nothing to install or start, nothing left behind) and to the
embedded tansu broker; `--database-url` and `--kafka apache` choose others, and `--smoke`
shrinks every part to seconds so that CI notices a broken bench without measuring.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from casebook.database import (
    Database,
    DatabaseUnavailable,
    embedded_server,
    ensure_database,
    parse_database_url,
    probe,
)
from entrypoints.migrate import apply_migrations

BROKER_KINDS = ("tansu", "apache")
BROKER_KIND_VARIABLE = "CASEBOOK_KAFKA_BROKER_KIND"
MASTER_KEY_VARIABLE = "CASEBOOK_PRIVACY_MASTER_KEY_FILE"
AT_END_TIMEOUT_S = 60.0


def add_arguments(parser: argparse.ArgumentParser, *, kafka: bool) -> None:
    """The options every bench shares: where PostgreSQL is, smoke mode, and the broker."""
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server to create the bench's databases on "
        "(default: an embedded server in a temporary directory)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every part at a tiny size, for CI: checks the bench runs, measures nothing",
    )
    if kafka:
        parser.add_argument(
            "--kafka", choices=BROKER_KINDS, default="tansu", help="the broker measured"
        )


def parse_args(parser: argparse.ArgumentParser, smoke: dict[str, Any]) -> argparse.Namespace:
    """Parse the command line; with --smoke, `smoke`'s sizes replace the defaults.

    Replacing defaults (rather than the parsed values) lets a size given on the command
    line still win in smoke mode.
    """
    args = parser.parse_args()
    if args.smoke:
        unknown = set(smoke) - set(vars(args))
        if unknown:
            raise ValueError(f"smoke sizes for options the bench lacks: {sorted(unknown)}")
        parser.set_defaults(**smoke)
        args = parser.parse_args()
    return args


@contextmanager
def bench_database(url: str | None) -> Iterator[Database]:
    """The server-level database the bench creates its fresh databases on.

    With a URL, that server (checked once, for a one-line error instead of a traceback
    from deep inside a bench); without, an embedded server whose data lives in a
    temporary directory removed with the server, so a run leaves nothing behind.
    Either way its processes seal personal data with a master key made for the run.
    """
    with tempfile.TemporaryDirectory(prefix="casebook-bench-") as tmp, _master_key(Path(tmp)):
        if url is not None:
            try:
                server = parse_database_url(url)
                probe(server)
            except DatabaseUnavailable as error:
                raise SystemExit(f"bench: {error}") from None
            yield server
            return
        with embedded_server(Path(tmp) / "pg") as server:
            yield server


@contextmanager
def _master_key(directory: Path) -> Iterator[None]:
    """Settings read the master key's file from the environment, as a deployment sets it."""
    path = directory / "privacy-master-key"
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    previous = os.environ.get(MASTER_KEY_VARIABLE)
    os.environ[MASTER_KEY_VARIABLE] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(MASTER_KEY_VARIABLE, None)
        else:
            os.environ[MASTER_KEY_VARIABLE] = previous


def describe_database(server: Database) -> str:
    """Which PostgreSQL a bench measured, for its header."""
    if server.embedded:
        return "embedded PostgreSQL (temporary directory)"
    return f"PostgreSQL at {server.host}:{server.port}"


def drop(server: Database, dbname: str) -> None:
    """Drop `dbname` on `server`, closing whatever connections a bench left open to it."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


@contextmanager
def fresh_database(server: Database) -> Iterator[Database]:
    """A new, migrated database on `server`, dropped afterwards.

    Fresh per bench part so that no part measures tables grown by another, and so that
    a run against a shared server (--database-url) touches nothing but its own database.
    """
    dbname = f"casebook_bench_{uuid.uuid4().hex[:8]}"
    database = ensure_database(server, dbname)
    try:
        apply_migrations(database)
        yield database
    finally:
        drop(server, dbname)


@dataclass(frozen=True)
class BenchBroker:
    """The broker a bench measures: which kind, and where clients connect."""

    kind: str  # one of BROKER_KINDS
    bootstrap_servers: str
    description: str  # for the bench's header


@contextmanager
def bench_broker(kind: str) -> Iterator[BenchBroker]:
    """Run the broker of `kind` for the block: tansu (embedded) or a one-broker Apache Kafka.

    entrypoints.apache_kafka is imported only when asked for: it needs a JVM and Kafka's
    jars, which a tansu run must not depend on. A broker that cannot start ends the bench
    with its one-line reason, not a traceback.
    """
    from entrypoints.broker import BrokerUnavailable

    with ExitStack() as stack:
        try:
            if kind == "tansu":
                from entrypoints.broker import embedded_broker

                tansu = stack.enter_context(embedded_broker())
                broker = BenchBroker("tansu", tansu.bootstrap_servers, "embedded tansu")
            elif kind == "apache":
                try:
                    from entrypoints.apache_kafka import apache_kafka
                except ImportError as error:
                    raise SystemExit(f"--kafka apache is not available here: {error}") from None
                cluster = stack.enter_context(apache_kafka(brokers=1))
                broker = BenchBroker(
                    cluster.kind, cluster.bootstrap_servers, "Apache Kafka (KRaft), 1 broker"
                )
            else:
                raise ValueError(f"unknown broker kind {kind!r}; expected one of {BROKER_KINDS}")
        except BrokerUnavailable as error:
            raise SystemExit(f"bench: {error}") from None
        # casebook's parts, in this process and in the subprocesses a bench starts, read
        # which broker they talk to from the environment, as a deployment sets it.
        previous = os.environ.get(BROKER_KIND_VARIABLE)
        os.environ[BROKER_KIND_VARIABLE] = broker.kind
        try:
            yield broker
        finally:
            if previous is None:
                os.environ.pop(BROKER_KIND_VARIABLE, None)
            else:
                os.environ[BROKER_KIND_VARIABLE] = previous


def consumer_at_end(broker: BenchBroker, topic: str) -> KafkaConsumer:
    """A consumer assigned every partition of `topic`, positioned after its last record.

    tansu answers end-offset requests wrongly, so there the consumer reads the topic from
    the beginning until its position reaches the highwater a fetch reported; Apache Kafka
    answers them correctly, so there the consumer seeks straight to them.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=5,  # the broker holds an empty fetch this long at most
        max_partition_fetch_bytes=4 << 20,
    )
    try:
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            raise RuntimeError(f"topic {topic} has no partitions on {broker.description}")
        partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        if broker.kind == "tansu":
            _read_to_highwater(consumer, partitions)
        else:
            for partition, offset in consumer.end_offsets(partitions).items():
                consumer.seek(partition, offset)
    except BaseException:
        consumer.close()
        raise
    return consumer


def _read_to_highwater(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
    """tansu's way to the end: read from the beginning until each position hits its highwater."""
    consumer.seek_to_beginning(*partitions)
    deadline = time.monotonic() + AT_END_TIMEOUT_S
    while True:
        consumer.poll(timeout_ms=200)
        marks = [consumer.highwater(tp) for tp in partitions]
        if all(
            mark is not None and consumer.position(tp) >= mark
            for tp, mark in zip(partitions, marks, strict=True)
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"did not reach the end of the topic in {AT_END_TIMEOUT_S:.0f} s")
