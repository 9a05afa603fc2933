"""Dead letters on Kafka: `<prefix>.dead-letters.v1`, the record as received plus why.

PostgreSQL's `casebook_consumer_dead_letters` is the source of truth for replay; the topic
lets other tools see and alert on dead letters. Publishing is best effort: a broker that
refuses is logged and the consumer carries on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError

from casebook.settings import Settings
from consumers.records import Headers
from consumers.state import DeadLetter
from messaging.kafka_clients import TopicRefused, ensure_topic, new_producer

log = structlog.get_logger("casebook.consumers")

SEND_TIMEOUT_S = 10.0
# Header names added to the original ones.
ERROR = "dlq_error"
GROUP = "dlq_group"
ATTEMPTS = "dlq_attempts"
ORIGINAL_TOPIC = "dlq_original_topic"
ORIGINAL_PARTITION = "dlq_original_partition"
ORIGINAL_OFFSET = "dlq_original_offset"
DEAD_LETTER_ID = "dlq_id"
DEAD_AT = "dlq_dead_at"


def dead_letter_topic(settings: Settings) -> str:
    """`<prefix>.dead-letters.v1`."""
    return f"{settings.topic_prefix}.dead-letters.v1"


def dead_letter_headers(dead: DeadLetter) -> Headers:
    """The original headers followed by the ones naming the error and where it came from."""
    extra = {
        ERROR: dead.error,
        GROUP: dead.group,
        ATTEMPTS: str(dead.attempts),
        ORIGINAL_TOPIC: dead.raw.topic,
        ORIGINAL_PARTITION: str(dead.raw.partition),
        ORIGINAL_OFFSET: str(dead.raw.offset),
        DEAD_LETTER_ID: str(dead.id),
        DEAD_AT: dead.dead_at.isoformat(),
    }
    return dead.raw.headers + tuple((name, value.encode()) for name, value in extra.items())


class DeadLetterPublisher:
    """Sends dead letters to their topic; a new producer after any failure."""

    def __init__(
        self,
        settings: Settings,
        bootstrap_servers: str,
        *,
        producer_factory: Callable[[], KafkaProducer] | None = None,
    ) -> None:
        self.topic = dead_letter_topic(settings)
        self._settings = settings
        self._bootstrap = bootstrap_servers
        self._new_producer = producer_factory or self._default_producer
        self._producer: KafkaProducer | None = None

    def ensure_topic(self) -> None:
        """Create the topic unless it exists; a refusal is logged, not fatal."""
        try:
            ensure_topic(self._settings, self._bootstrap, self.topic, "casebook-consumer")
        except (KafkaError, TopicRefused) as error:
            log.warning("consumer.dead_letters.topic_failed", topic=self.topic, error=str(error))

    def publish(self, dead: DeadLetter) -> bool:
        """Send one dead letter and wait for the broker; False (logged) when it failed."""
        try:
            producer = self._producer = self._producer or self._new_producer()
            producer.send(
                self.topic,
                key=dead.raw.key,
                value=dead.raw.value,
                headers=list(dead_letter_headers(dead)),
            ).get(timeout=SEND_TIMEOUT_S)
        except KafkaError as error:
            log.warning(
                "consumer.dead_letter.publish_failed",
                topic=self.topic,
                dead_letter_id=dead.id,
                error=f"{type(error).__name__}: {error}",
            )
            self.close()
            return False
        return True

    def close(self) -> None:
        """Close the producer, if one is open."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):
                producer.close(timeout=2)

    def _default_producer(self) -> KafkaProducer:
        return new_producer(
            self._settings,
            self._bootstrap,
            client_id="casebook-dead-letters",
            acks="all",
            # Not idempotent: such a producer never recovers from a restarted broker, and
            # a dead letter sent twice is harmless (it carries its dlq_id).
            enable_idempotence=False,
            retries=3,
        )
