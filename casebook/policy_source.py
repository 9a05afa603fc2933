"""Where the support policy comes from: a configured file or the shipped default."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from domain.policy import Policy, PolicyError, parse_policy

DEFAULT_POLICY = "default_policy.toml"


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
