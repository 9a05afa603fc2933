"""All configuration, read once from the environment (prefix CASEBOOK_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """casebook's settings; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="CASEBOOK_", extra="ignore")

    policy_file: Path | None = Field(
        default=None,
        description="Support policy TOML file; the shipped default when unset.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
