"""Follow the event store's notification log and publish it to Kafka, in order.

Every round reads what was stored after the relay's durable position, sends it, waits
for the broker to acknowledge all of it (acks=all, idempotent producer), and only then
advances the position in PostgreSQL. A crash between the acknowledgement and the save
republishes that round: records keep their `ce_id`, so consumers drop the duplicates.
When idle the relay sleeps on PostgreSQL LISTEN/NOTIFY instead of polling.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaConfigurationError, KafkaError

from casebook.database import Database
from casebook.settings import Settings
from casebook.store import OriginNotification
from casebook.supervision import report_lag, report_trouble
from messaging.kafka_clients import (
    TopicRefused,
    delivery_timeout_s,
    end_offsets,
    ensure_topic,
    new_producer,
    topic_partitions,
)
from relay.cloudevents import Record, record_for, topic_name
from relay.leadership import Leadership, leadership

log = structlog.get_logger("casebook.relay")
RELAY_NAME = "case-events"
MAX_BACKOFF_S = 30.0
IDLE_WAIT_S = 1.0


@dataclass(frozen=True)
class Round:
    """Records sent to the broker and not yet known to be acknowledged."""

    futures: list[Any]
    last: int  # notification id of the round's last event


class RelayError(RuntimeError):
    """The relay cannot work at all (a refused topic, say); the message says why."""


class TopicLost(RuntimeError):
    """A partition's offsets went back: the topic was emptied, deleted or recreated.

    A broker that auto-creates topics accepts the next round into a new, empty topic
    without any error, so the offsets the broker acknowledges are the only sign.
    """


class Relay:
    """Publishes stored events to `<prefix>.case-events.v1` while it holds leadership."""

    def __init__(
        self,
        store: Any,
        database: Database,
        settings: Settings,
        *,
        bootstrap_servers: str,
        name: str = RELAY_NAME,
        producer_factory: Callable[[], KafkaProducer] | None = None,
    ) -> None:
        self._store = store
        self._database = database
        self._settings = settings
        # Past the producer's own delivery timeout: by then each record succeeded or failed.
        self._ack_timeout_s = delivery_timeout_s(settings) + 5
        self._bootstrap = bootstrap_servers
        self.name = name
        self.topic = topic_name(settings.topic_prefix)
        self._new_producer = producer_factory or self._default_producer
        self._producer: KafkaProducer | None = None
        self.published = 0  # records acknowledged by the broker, for logs and benches
        # Highest offset acknowledged per partition since following began.
        self._acked_offsets: dict[int, int] = {}

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set; stand by while another relay holds the lock."""
        self.ensure_topic()
        while not stop.is_set():
            with leadership(self._database.url, self.name, stop) as held:
                if held is not None:
                    self._follow(held, stop)
        self._close_producer()

    def ensure_topic(self) -> None:
        """Create the topic with the configured partitions unless it exists."""
        try:
            ensure_topic(self._settings, self._bootstrap, self.topic, "casebook-relay")
        except TopicRefused as error:
            raise RelayError(str(error)) from None

    def position(self) -> int:
        """The last notification id the broker acknowledged (0 before the first)."""
        with psycopg.connect(self._database.url) as conn:
            row = conn.execute(
                "SELECT position FROM casebook_relay_positions WHERE relay = %s", (self.name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def _follow(self, held: Leadership, stop: threading.Event) -> None:
        # Pipelined: while one round's acknowledgements are on their way, the next round
        # is read and encoded. Only acknowledged rounds move the saved position.
        acked = self._checked_position(self.position())
        self._acked_offsets.clear()
        log.info("relay.following", relay=self.name, topic=self.topic, position=acked)
        backoff, recovering = 0.5, False
        in_flight: Round | None = None
        with psycopg.connect(self._database.url, autocommit=True) as listener:
            channel = self._store.recorder.channel_name
            listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
            while not stop.is_set():
                # Each event with its command's origin, in the same query (a LEFT JOIN).
                notifications = self._store.recorder.select_with_origins(
                    in_flight.last if in_flight else acked,
                    self._settings.relay_batch_max,
                    inclusive_of_start=False,
                )
                if not held.still_held():
                    log.warning("relay.leadership.lost", relay=self.name)
                    return  # a standby may already publish: never race it
                report_lag(len(notifications), progressed=in_flight is not None)
                if not notifications and in_flight is None:
                    for _ in listener.notifies(timeout=IDLE_WAIT_S, stop_after=1):
                        pass
                    continue
                try:
                    if recovering:
                        # The broker may be a new one that lost the topic: recreate it
                        # and start over from what the topic still holds.
                        self.ensure_topic()
                        rewound = self._checked_position(acked)
                        if rewound != acked:
                            acked = rewound
                            self._acked_offsets.clear()
                            self._save_position(listener, acked)
                            continue
                    records = self._records(notifications)
                    if in_flight is not None:
                        self._await(in_flight)
                        acked, in_flight = in_flight.last, None
                        self._save_position(listener, acked)
                    if records:
                        in_flight = self._send(records)
                except TopicLost as error:
                    log.warning(
                        "relay.topic.lost",
                        topic=self.topic,
                        detail=str(error),
                        position=acked,
                        action="republish from 0",
                    )
                    self._close_producer()
                    in_flight, acked = None, 0
                    self._acked_offsets.clear()
                    self._save_position(listener, acked)
                    continue
                except KafkaConfigurationError as error:
                    # Retrying the same settings cannot help: stop loudly.
                    raise RelayError(f"Kafka client settings refused: {error}") from None
                except KafkaError as error:
                    log.warning(
                        "relay.publish.failed",
                        error=type(error).__name__,
                        detail=str(error)[:200],
                        retry_in_s=backoff,
                        position=acked,
                    )
                    report_trouble(error)
                    self._close_producer()  # an idempotent producer dies with its broker
                    in_flight, recovering = None, True  # resend from the acknowledged position
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                backoff, recovering = 0.5, False
            if in_flight is not None:
                self._finish_on_stop(listener, in_flight)

    def _finish_on_stop(self, listener: psycopg.Connection[Any], in_flight: Round) -> None:
        try:
            self._await(in_flight)
        except (KafkaError, TopicLost):
            return  # the next relay resends that round
        self._save_position(listener, in_flight.last)

    def _checked_position(self, position: int) -> int:
        """`position`, or 0 when the topic is empty although we published before.

        An in-memory broker that restarted, or a topic deleted by hand, has lost what
        the relay published: the whole log goes out again (consumers deduplicate by
        `ce_id`). Partial loss inside a partition is not detected here.
        """
        if position == 0 or not self._topic_is_empty():
            return position
        log.warning(
            "relay.topic.lost", topic=self.topic, position=position, action="republish from 0"
        )
        return 0

    def _topic_is_empty(self) -> bool:
        partitions = topic_partitions(self._settings, self._bootstrap, self.topic)
        ends = end_offsets(self._settings, self._bootstrap, partitions)
        return not any(ends.values())

    def _records(self, notifications: list[OriginNotification]) -> list[Record]:
        source = self._settings.event_source
        personal = self._settings.relay_include_personal_data
        return [
            record_for(
                self._store.mapper.to_domain_event(notification),
                notification.id,
                source=source,
                include_personal=personal,
                origin=notification.origin,
            )
            for notification in notifications
        ]

    def _send(self, records: list[Record]) -> Round:
        producer = self._producer or self._open_producer()
        futures = [
            producer.send(self.topic, key=r.key, value=r.value, headers=r.headers) for r in records
        ]
        return Round(futures, records[-1].position)

    def _await(self, round_: Round) -> None:
        """Wait until the broker acknowledged every record of the round (or raise)."""
        assert self._producer is not None
        self._producer.flush(timeout=self._ack_timeout_s)
        for future in round_.futures:
            # Raises the broker's refusal, if any.
            metadata = future.get(timeout=self._ack_timeout_s)
            before = self._acked_offsets.get(metadata.partition, -1)
            if metadata.offset <= before:
                self._acked_offsets.clear()
                raise TopicLost(
                    f"partition {metadata.partition} acknowledged offset {metadata.offset} "
                    f"after {before}"
                )
            self._acked_offsets[metadata.partition] = metadata.offset
        self.published += len(round_.futures)
        log.debug("relay.published", count=len(round_.futures), last=round_.last)

    def _save_position(self, conn: psycopg.Connection[Any], position: int) -> None:
        conn.execute(
            "INSERT INTO casebook_relay_positions (relay, position) VALUES (%s, %s)"
            " ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position,"
            " updated_at = now()",
            (self.name, position),
        )

    def _open_producer(self) -> KafkaProducer:
        self._producer = self._new_producer()
        return self._producer

    def _default_producer(self) -> KafkaProducer:
        return new_producer(
            self._settings,
            self._bootstrap,
            client_id="casebook-relay",
            acks="all",
            enable_idempotence=True,  # per-key order survives retries
            linger_ms=5,
            retry_backoff_ms=200,
        )

    def _close_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(KafkaError):
                self._producer.close(timeout=2)
            self._producer = None
