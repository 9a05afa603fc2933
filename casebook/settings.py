"""All configuration, read once from the environment (prefix CASEBOOK_).

Nothing else in casebook reads `os.environ`: components receive `Settings`.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """casebook's settings; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="CASEBOOK_", extra="ignore", populate_by_name=True)

    policy_file: Path | None = Field(
        default=None,
        description="Support policy TOML file; the shipped default when unset.",
    )
    policy_archive_dir: Path | None = Field(
        default=None,
        description="Directory of earlier policy versions (*.toml): the SLA tracker "
        "recomputes an event's deadline under the version it records.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:port/db). "
        "Unset: an embedded server with its data under data_dir.",
    )
    data_dir: Path = Field(
        default=Path("var"), description="Where the embedded PostgreSQL keeps its data."
    )
    db_pool_size: int = Field(default=10, ge=1, description="Connections per process.")
    api_host: str = Field(default="127.0.0.1", description="Address `casebook serve` binds.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port `casebook serve` binds.")
    api_workers: int = Field(
        default=1, ge=1, description="API processes `casebook serve` starts on its port."
    )
    api_trusted_proxies: str = Field(
        default="",
        description="Proxies whose X-Forwarded-For/-Proto the API believes (addresses or "
        "networks, comma-separated; * for any). Empty: every request's address is that of "
        "its TCP peer, which is what the audit trail records.",
    )
    log_level: str = Field(default="info", description="debug, info, warning, error.")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal, JSON otherwise."
    )
    api_key_cache_seconds: float = Field(
        default=5,
        ge=0,
        description="How long the API remembers a verified key; a revoked key works "
        "at most this long in a running API process (0: check every request).",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        # The name operators know from Kafka tooling; the prefixed one works too.
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "CASEBOOK_KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="Kafka brokers (host:port,...). Unset: `casebook run` starts a local "
        "tansu broker.",
    )
    topic_prefix: str = Field(
        default="casebook",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Prefix of every topic name: <prefix>.case-events.v1.",
    )
    topic_partitions: int = Field(default=6, ge=1, description="Partitions of new topics.")
    topic_replication: int = Field(default=1, ge=1, description="Replicas of new topics.")
    event_source: str = Field(
        default="/casebook", description="CloudEvents `source` of published events."
    )
    relay_batch_max: int = Field(
        default=500, ge=1, description="Most events the relay publishes per round."
    )
    relay_include_personal_data: bool = Field(
        default=False,
        description="Publish phones, e-mails and free text to analytics (off: removed).",
    )
    write_batch_max: int = Field(
        default=64,
        ge=1,
        description="Most commands saved together in one transaction.",
    )
    writer_address: str | None = Field(
        default=None,
        description="Unix socket of the writer process; `casebook serve --workers N` "
        "sets it for its API processes (unset: each process writes itself).",
    )
    consumer_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Tries of an event a projection fails on before it is dead-lettered.",
    )
    consumer_batch_max: int = Field(
        default=500, ge=1, description="Most records a consumer applies in one transaction."
    )
    consumer_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="Kafka consumer-group session timeout; a member silent this long is "
        "replaced (heartbeats every quarter of it).",
    )

    audit_signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs audit checkpoints. Unset: "
        "generated under data_dir when embedded; required with an external database.",
    )
    audit_checkpoint_seconds: float = Field(
        default=10,
        gt=0,
        description="How often the audit checkpointer signs a checkpoint over new entries.",
    )

    @field_validator("kafka_bootstrap_servers", "database_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `KAFKA_BOOTSTRAP_SERVERS=` in a shell or compose file means "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return ",".join(entries)

    @property
    def uses_embedded_database(self) -> bool:
        """True when no external PostgreSQL is configured."""
        return self.database_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
