"""All configuration, read once from the environment (prefix CASEBOOK_).

Nothing else in casebook reads `os.environ`: components receive `Settings`.
It stays one module: one class is the whole configuration, and docs/configuration.md is
generated from it field by field.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """casebook's settings; docs/configuration.md is generated from their descriptions."""

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
    api_metrics_dir: Path | None = Field(
        default=None,
        description="Directory where the API processes of `casebook serve --workers N` "
        "(N > 1) keep their metric files (`*.db`), so that `GET /metrics` sums them. "
        "`serve` deletes the files a previous run left there when it starts (one `serve` "
        "per directory) and sets this, and prometheus-client's PROMETHEUS_MULTIPROC_DIR, "
        "for its API processes. Unset: a fresh temporary directory, removed at stop.",
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
    api_max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest request body the API reads; a larger one is refused with 413 "
        "before anything is parsed or written.",
    )
    api_max_json_depth: int = Field(
        default=32, ge=2, description="Deepest nesting of arrays and objects a JSON body may have."
    )
    api_rate_limit_writes: str = Field(
        default="600/minute",
        description="Commands one API key may send (limits notation: N/second|minute|hour, "
        "'a;b' for several); over it: 429 with Retry-After. Counted per API process.",
    )
    api_rate_limit_reads: str = Field(
        default="3000/minute", description="Reads one API key may make (as above)."
    )
    api_rate_limit_per_address: str = Field(
        default="6000/minute", description="Requests one client address may make (as above)."
    )
    api_rate_limit_auth_failures: str = Field(
        default="30/minute",
        description="Requests without a valid key one client address may make; beyond it "
        "every request from that address is 429 until the window passes, valid key or not.",
    )
    api_rate_limit_verifications: str = Field(
        default="30/hour",
        description="Caller verification codes requested and read back per API key (PIN "
        "attempts; each verification also locks after its own attempts).",
    )
    api_header_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="Time a connection has to send a complete request head; slower ones "
        "are closed (and counted in casebook_http_connections_closed_total).",
    )
    api_idle_timeout_seconds: float = Field(
        default=5, gt=0, description="An idle keep-alive connection is closed after this long."
    )
    api_max_connections: int = Field(
        default=1000,
        ge=1,
        description="Connections one API process holds at once; beyond it new requests get "
        "an immediate 503.",
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
    topic_replication: int | None = Field(
        default=None,
        ge=1,
        description="Replicas of the topics casebook creates. Unset: 3, or the number of "
        "brokers when the cluster has fewer.",
    )
    topic_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of the topics casebook creates (with acks=all, a "
        "write needs this many replicas). Unset: 2 with 3 or more replicas, else 1.",
    )
    kafka_broker_kind: Literal["apache", "tansu"] = Field(
        default="apache",
        description="What the brokers are: apache (Apache Kafka or a compatible service) or "
        "tansu (the local broker, whose end offsets are read from fetches instead). "
        "`casebook run` sets tansu for the broker it starts.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How every Kafka client reaches the brokers."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism (required with SASL_PLAINTEXT / SASL_SSL)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the brokers' certificates (SSL, "
        "SASL_SSL). Unset: the system's trusted CAs.",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that ask for one."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of kafka_ssl_certfile."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of kafka_ssl_keyfile, if it is encrypted."
    )
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
        default=64, ge=1, description="Most commands saved together in one transaction."
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
    consumer_gap_timeout_seconds: float = Field(
        default=300,
        gt=0,
        description="How long a consumer holds a case whose next event skips a sequence "
        "number, waiting for the missing one, before it parks the case (sequence-gap).",
    )
    part_retry_max_seconds: float = Field(
        default=30,
        gt=0,
        description="Longest wait before a failed relay, consumer, timer, checkpointer or "
        "outbox publisher is started again (the wait doubles from 0.5 s up to this), and "
        "before an undelivered survey invitation is tried again (doubling from 1 s).",
    )
    metrics_require_key: bool = Field(
        default=False,
        description="`GET /metrics` asks for an admin or supervisor API key. False: it "
        "answers without a key, like `/healthz` (keep it off a public network then).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on which `casebook relay` and `casebook consume ...` serve their "
        "Prometheus metrics (`/metrics`, no key). Unset: they serve none; the API serves "
        "its own on `GET /metrics`.",
    )
    part_unhealthy_seconds: float = Field(
        default=60,
        gt=0,
        description="A part failing, or behind without progress, for longer than this "
        "makes the process unhealthy (`/healthz` 503, `casebook consumers status`).",
    )
    outage_limit_seconds: float = Field(
        default=900,
        gt=0,
        description="How long standalone `relay` and `consume` processes retry an "
        "unreachable database or broker before they exit 1 for their supervisor.",
    )
    waiting_window_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Days of first responses the expected waiting time promised at opening "
        "is estimated from (their median and rate, per category and severity; docs/sla.md).",
    )
    consumer_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="Kafka consumer-group session timeout; a member silent this long is "
        "replaced (heartbeats every quarter of it).",
    )

    audit_signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs audit checkpoints and evidence "
        "bundles' manifests (the audit service, `casebook audit export` and API processes "
        "serving bundles read it). Unset: generated under data_dir when embedded; required "
        "with an external database.",
    )
    privacy_master_key_file: Path | None = Field(
        default=None,
        description="The master key (32 random bytes, base64, one line) that wraps the data "
        "keys sealing personal data. Unset: generated under data_dir when embedded; required "
        "with an external database. Losing it loses every personal field.",
    )
    privacy_key_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a process reuses a data key it opened for reading; an erasure "
        "made by another process takes effect there within this time.",
    )
    audit_checkpoint_seconds: float = Field(
        default=10,
        gt=0,
        description="How often the audit checkpointer signs a checkpoint over new entries.",
    )
    notifier: Literal["table", "smtp"] = Field(
        default="table",
        description="Where one-time caller verification codes and survey invitations are "
        "sent: table (kept in casebook_notifications, read with `casebook notifications "
        "list`) or smtp (e-mail through smtp_host; messages to a phone cannot go by SMTP).",
    )
    smtp_host: str = Field(default="localhost", description="SMTP server (notifier smtp).")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of smtp_host.")
    smtp_from: str = Field(
        default="support@casebook.invalid", description="Sender address of notifications."
    )
    smtp_starttls: bool = Field(default=False, description="Upgrade SMTP with STARTTLS.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if needed.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")

    @field_validator("kafka_bootstrap_servers", "database_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `KAFKA_BOOTSTRAP_SERVERS=` in a shell or compose file means "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "api_rate_limit_writes",
        "api_rate_limit_reads",
        "api_rate_limit_per_address",
        "api_rate_limit_auth_failures",
        "api_rate_limit_verifications",
    )
    @classmethod
    def _rate_limits_parse(cls, value: str) -> str:
        from limits import parse_many  # the notation the API's limiter reads

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as 120/minute") from None
        return value

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

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        # Caught here, a half-configured cluster connection fails at start with the setting
        # to fix, instead of as a retry loop against a broker that keeps refusing.
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            missing = [
                f"CASEBOOK_{name.upper()}"
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"{protocol} needs {', '.join(missing)}")
        tls_files = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
        if not protocol.endswith("SSL"):
            given = [f"CASEBOOK_{name.upper()}" for name in tls_files if getattr(self, name)]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but CASEBOOK_KAFKA_SECURITY_PROTOCOL is {protocol} "
                    "(SSL or SASL_SSL uses them)"
                )
        for name in tls_files:
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"CASEBOOK_{name.upper()}: no file at {path}")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("CASEBOOK_KAFKA_SSL_CERTFILE and _KEYFILE go together")
        return self

    @property
    def uses_embedded_database(self) -> bool:
        """True when no external PostgreSQL is configured."""
        return self.database_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()


def describe_invalid(error: ValidationError) -> str:
    """One line naming each setting at fault, as the environment variable an operator sets."""
    problems = []
    for problem in error.errors():
        names = [str(part) for part in problem["loc"] if part != "__root__"]
        variable = f"CASEBOOK_{names[0].upper()}: " if names else ""
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{variable}{message}")
    return "invalid settings: " + "; ".join(problems)
