"""Where the support policy comes from: a configured file or the shipped default."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from domain.policy import Policy, PolicyError, parse_policy

DEFAULT_POLICY = "default_policy.toml"
# Earlier versions of the shipped default, never edited: events recorded under them
# replay with them even where no CASEBOOK_POLICY_ARCHIVE_DIR holds a copy.
EARLIER_DEFAULTS = ("default_policy_2025.1.toml", "default_policy_2025.2.toml")


def default_policy_text() -> str:
    """The policy shipped with casebook (support-policy.md with §7's decisions)."""
    return files("casebook").joinpath(DEFAULT_POLICY).read_text(encoding="utf-8")


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file; the shipped default when `path` is None."""
    if path is None:
        return parse_policy(default_policy_text(), source=f"casebook/{DEFAULT_POLICY}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{path}: cannot read policy file: {error.strerror}") from None
    return parse_policy(text, source=str(path))


def earlier_default_policies() -> list[Policy]:
    """The earlier versions of the shipped default policy."""
    return [
        parse_policy(
            files("casebook").joinpath(name).read_text(encoding="utf-8"),
            source=f"casebook/{name}",
        )
        for name in EARLIER_DEFAULTS
    ]
