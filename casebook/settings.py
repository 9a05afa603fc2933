"""All configuration, read once from the environment (prefix CASEBOOK_).

Nothing else in casebook reads `os.environ`: components receive `Settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """casebook's settings; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="CASEBOOK_", extra="ignore")

    policy_file: Path | None = Field(
        default=None,
        description="Support policy TOML file; the shipped default when unset.",
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
    write_batch_max: int = Field(
        default=64,
        ge=1,
        description="Most commands saved together in one transaction.",
    )

    @property
    def uses_embedded_database(self) -> bool:
        """True when no external PostgreSQL is configured."""
        return self.database_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
