"""The Kafka brokers a command needs: configured, and accepting our certificates and login."""

from __future__ import annotations

import typer

from casebook.settings import Settings
from messaging.kafka_clients import check_brokers


def required_brokers(settings: Settings, instead: str) -> str:
    """KAFKA_BOOTSTRAP_SERVERS, checked; a one-line refusal when unset or misconfigured.

    `instead` says what `casebook run` does in this command's place.
    """
    if settings.kafka_bootstrap_servers is None:
        raise typer.BadParameter(f"set KAFKA_BOOTSTRAP_SERVERS to the Kafka brokers ({instead})")
    check_brokers(settings, settings.kafka_bootstrap_servers)
    return settings.kafka_bootstrap_servers
