"""Every Kafka client casebook makes, built from one place: the brokers and their security.

The relay, the outbox relays, the consumers, dead letters and rebuilds construct their
producers, consumers and admin clients here, so a cluster that needs TLS or SASL is
configured once. What differs between Apache Kafka and the local tansu broker is decided
here too, and nowhere else (CASEBOOK_KAFKA_BROKER_KIND): how end offsets are read
(`end_offsets`), how long a publisher waits for a round (`delivery_timeout_s`) and how
long a consumer lets the broker hold an empty fetch (`fetch_max_wait_ms`).

It stays one module on purpose: every difference between brokers is decided here and
nowhere else.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, TopicAlreadyExistsError

from casebook.errors import first_line
from casebook.settings import Settings

log = structlog.get_logger(__name__)

# How long the start-up check waits for a broker before calling it unreachable.
CHECK_TIMEOUT_S = 10.0
# tansu: how long to fetch before taking the highwater marks as the end offsets.
HIGHWATER_FETCH_S = 5.0
DEFAULT_REPLICATION = 3


class KafkaMisconfigured(RuntimeError):
    """The brokers refuse casebook's credentials or certificates: retrying cannot help.

    The message is one line and names the setting to fix.
    """


class TopicRefused(RuntimeError):
    """The broker would not create a topic; the message says which and why."""


def security_options(settings: Settings) -> dict[str, Any]:
    """kafka-python keyword arguments for the configured security protocol."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # the settings' validator saw to it
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    if settings.kafka_security_protocol.endswith("SSL"):
        options["ssl_check_hostname"] = True
        if settings.kafka_ssl_cafile is not None:
            options["ssl_cafile"] = str(settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile is not None:
            options["ssl_certfile"] = str(settings.kafka_ssl_certfile)
            options["ssl_keyfile"] = str(settings.kafka_ssl_keyfile)
        if settings.kafka_ssl_key_password is not None:
            options["ssl_password"] = settings.kafka_ssl_key_password.get_secret_value()
    return options


def delivery_timeout_s(settings: Settings) -> float:
    """How long a publisher lets its producer deliver a round before it starts over.

    On Apache Kafka the idempotent producer retries through a leader election by itself,
    without duplicating, so it gets time for that. tansu forgets producer ids when it
    restarts and never answers such a producer: give up soon and start over with a new one.
    """
    return 60.0 if settings.kafka_broker_kind == "apache" else 10.0


def fetch_max_wait_ms(settings: Settings) -> int:
    """How long a consumer lets the broker hold a fetch that found nothing new.

    Apache Kafka answers a held fetch as soon as records arrive, so its default costs no
    latency. tansu does not: it answers when the wait is over, so a short wait there keeps
    a command's trip to the projections short.
    """
    return 500 if settings.kafka_broker_kind == "apache" else 50


def new_producer(settings: Settings, bootstrap_servers: str, **options: Any) -> KafkaProducer:
    """A producer for the brokers at `bootstrap_servers`, with the configured security
    and `delivery_timeout_s` (unless `options` say otherwise)."""
    delivery_ms = int(delivery_timeout_s(settings) * 1000)
    options.setdefault("delivery_timeout_ms", delivery_ms)
    # A request must be able to time out (and be retried) within the delivery timeout.
    options.setdefault("request_timeout_ms", delivery_ms // 2)
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers, **security_options(settings), **options
    )


def new_consumer(settings: Settings, bootstrap_servers: str, **options: Any) -> KafkaConsumer:
    """A consumer for the brokers at `bootstrap_servers`, with the configured security."""
    return KafkaConsumer(
        bootstrap_servers=bootstrap_servers, **security_options(settings), **options
    )


def new_admin(settings: Settings, bootstrap_servers: str, **options: Any) -> KafkaAdminClient:
    """An admin client for the brokers at `bootstrap_servers`, with the configured security."""
    return KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, **security_options(settings), **options
    )


def end_offsets(
    settings: Settings, bootstrap_servers: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offset after each partition's last record.

    Apache Kafka answers ListOffsets; tansu answers it wrongly, so there the highwater
    marks that come back with fetches are read instead (a fetch from the beginning of
    each partition, until every partition has one or `HIGHWATER_FETCH_S` passed).
    """
    if not partitions:
        return {}
    consumer = new_consumer(settings, bootstrap_servers, enable_auto_commit=False)
    try:
        if settings.kafka_broker_kind == "apache":
            ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
            return ends
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + HIGHWATER_FETCH_S
        while time.monotonic() < deadline:
            consumer.poll(timeout_ms=200, max_records=1)
            marks = {tp: consumer.highwater(tp) for tp in partitions}
            if all(mark is not None for mark in marks.values()):
                return {tp: mark or 0 for tp, mark in marks.items()}
        return {tp: consumer.highwater(tp) or 0 for tp in partitions}
    finally:
        consumer.close()


def topic_partitions(
    settings: Settings, bootstrap_servers: str, topic: str
) -> list[TopicPartition]:
    """The partitions of `topic` (none when it does not exist)."""
    consumer = new_consumer(settings, bootstrap_servers, enable_auto_commit=False)
    try:
        found = consumer.partitions_for_topic(topic) or ()
        return [TopicPartition(topic, partition) for partition in sorted(found)]
    finally:
        consumer.close()


def topic_ids(settings: Settings, bootstrap_servers: str, topics: list[str]) -> dict[str, str]:
    """Each existing topic's id: a topic deleted and created again gets a new one."""
    admin = new_admin(settings, bootstrap_servers, client_id="casebook-topics")
    try:
        described = admin.describe_topics(topics)
    finally:
        admin.close()
    return {
        str(topic["name"]): str(topic["topic_id"])
        for topic in described
        if topic.get("error_code") == 0 and topic.get("topic_id")
    }


def replication_for(settings: Settings, brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a new topic on a cluster of `brokers`."""
    replicas = settings.topic_replication or min(DEFAULT_REPLICATION, max(brokers, 1))
    min_insync = settings.topic_min_insync_replicas or (2 if replicas >= 3 else 1)
    return replicas, min_insync


def ensure_topic(settings: Settings, bootstrap_servers: str, topic: str, client_id: str) -> None:
    """Create `topic` (configured partitions and replication, kept forever) unless it exists."""
    admin = new_admin(settings, bootstrap_servers, client_id=client_id)
    try:
        brokers = len(admin.describe_cluster().get("brokers") or ())
        replicas, min_insync = replication_for(settings, brokers)
        admin.create_topics(
            {
                topic: {
                    "num_partitions": settings.topic_partitions,
                    "replication_factor": replicas,
                    "topic_configs": {
                        # Published events are their readers' history: keep them forever.
                        "retention.ms": "-1",
                        "min.insync.replicas": str(min_insync),
                    },
                }
            }
        )
        log.info("kafka.topic.created", topic=topic, replicas=replicas, min_insync=min_insync)
    except TopicAlreadyExistsError:
        pass
    except KafkaError as error:
        raise TopicRefused(f"the broker refused to create topic {topic}: {error}") from None
    finally:
        admin.close()


def check_brokers(settings: Settings, bootstrap_servers: str) -> None:
    """Raise `KafkaMisconfigured` at once when the brokers refuse our certificates or login.

    A broker that is merely down is not an error here: the long-running parts retry it.
    """
    if settings.kafka_security_protocol.endswith("SSL"):
        _check_tls(settings, bootstrap_servers)
    if settings.kafka_security_protocol.startswith("SASL_"):
        _check_sasl(settings, bootstrap_servers)


def _check_sasl(settings: Settings, bootstrap_servers: str) -> None:
    # kafka-python reports a refused login only in its log and then waits out its bootstrap
    # timeout, so the check listens to that log while it connects, for a bounded time.
    refusals = _AuthenticationRefusals()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(refusals)
    try:
        admin = new_admin(
            settings,
            bootstrap_servers,
            client_id="casebook-check",
            bootstrap_timeout_ms=int(CHECK_TIMEOUT_S * 1000),
            request_timeout_ms=int(CHECK_TIMEOUT_S * 1000),
        )
    except KafkaError as error:
        if refusals.reason is not None or _is_authentication_failure(error):
            raise KafkaMisconfigured(_sasl_refused(settings, refusals.reason or error)) from None
        if _accepts_connections(settings, bootstrap_servers):
            # The broker takes connections (and our TLS, checked before) yet no session
            # got past the login: it closed them during SASL, which is how a refused
            # login often looks from kafka-python.
            reason = "the broker closed every connection during the SASL login"
            raise KafkaMisconfigured(_sasl_refused(settings, reason)) from None
        log.warning("kafka.check.unreachable", brokers=bootstrap_servers, error=first_line(error))
        return
    finally:
        kafka_log.removeHandler(refusals)
    admin.close()


def _accepts_connections(settings: Settings, bootstrap_servers: str) -> bool:
    """True when some broker of the list completes a TCP connection (and TLS, where used)."""
    tls = settings.kafka_security_protocol.endswith("SSL")
    context = _tls_context(settings) if tls else None
    for host, port in _addresses(bootstrap_servers):
        try:
            with socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S) as raw:
                if context is None:
                    return True
                with context.wrap_socket(raw, server_hostname=host):
                    return True
        except OSError:
            continue
    return False


def _addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    addresses = []
    for address in bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


class _AuthenticationRefusals(logging.Handler):
    """Keeps the first SASL refusal kafka-python logs."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.reason: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.reason is None and ("Sasl" in message or "SASL" in message):
            self.reason = message


def _is_authentication_failure(error: BaseException) -> bool:
    return "Authentication" in type(error).__name__


def _sasl_refused(settings: Settings, reason: BaseException | str) -> str:
    detail = reason if isinstance(reason, str) else first_line(reason)
    return (
        f"Kafka refused the {settings.kafka_sasl_mechanism} login of user "
        f"{settings.kafka_sasl_username!r}: check CASEBOOK_KAFKA_SASL_USERNAME, "
        f"CASEBOOK_KAFKA_SASL_PASSWORD and CASEBOOK_KAFKA_SASL_MECHANISM ({detail})"
    )


def _tls_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    if settings.kafka_ssl_certfile is not None:
        password = settings.kafka_ssl_key_password
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile),
            password.get_secret_value() if password else None,
        )
    return context


def _check_tls(settings: Settings, bootstrap_servers: str) -> None:
    """One TLS handshake with the first broker that answers, with the configured trust."""
    context = _tls_context(settings)
    for host, port in _addresses(bootstrap_servers):
        address = f"{host}:{port}"
        try:
            with (
                socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S) as raw,
                context.wrap_socket(raw, server_hostname=host),
            ):
                return
        except ssl.SSLCertVerificationError as error:
            trusted = settings.kafka_ssl_cafile or "the system's trusted CAs"
            raise KafkaMisconfigured(
                f"the certificate of Kafka broker {address} is not trusted by "
                f"CASEBOOK_KAFKA_SSL_CAFILE ({trusted}): {error.verify_message}"
            ) from None
        except ssl.SSLError as error:
            raise KafkaMisconfigured(
                f"TLS with Kafka broker {address} failed (CASEBOOK_KAFKA_SECURITY_PROTOCOL is "
                f"{settings.kafka_security_protocol}; is that the listener's?): "
                f"{first_line(error)}"
            ) from None
        except OSError:
            continue  # down, or not yet up: the parts that use it retry
