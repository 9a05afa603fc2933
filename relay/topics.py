"""Topics casebook publishes to: created once with the configured partitions, kept forever."""

from __future__ import annotations

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from casebook.settings import Settings

log = structlog.get_logger("casebook.relay")


class TopicRefused(RuntimeError):
    """The broker would not create a topic; the message says which and why."""


def ensure_topic(bootstrap_servers: str, topic: str, settings: Settings, client_id: str) -> None:
    """Create `topic` with the configured partitions and infinite retention unless it exists."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id)
    try:
        admin.create_topics(
            {
                topic: {
                    "num_partitions": settings.topic_partitions,
                    "replication_factor": settings.topic_replication,
                    # Published events are their readers' history: keep them forever.
                    "topic_configs": {"retention.ms": "-1"},
                }
            }
        )
        log.info("relay.topic.created", topic=topic)
    except TopicAlreadyExistsError:
        pass
    except KafkaError as error:
        raise TopicRefused(f"the broker refused to create topic {topic}: {error}") from None
    finally:
        admin.close()
