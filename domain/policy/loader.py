"""Parse a policy document (TOML text) into a validated `Policy`."""

from __future__ import annotations

import tomllib

from pydantic import ValidationError

from domain.errors import DomainError
from domain.policy.model import Policy


class PolicyError(DomainError):
    """The policy document is malformed; the message names the field at fault."""

    rule = "policy-is-valid"


def parse_policy(text: str, *, source: str = "policy") -> Policy:
    """Validate a TOML policy document, naming the first bad field on failure."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{source}: not valid TOML: {error}") from None
    try:
        return Policy.model_validate(document)
    except ValidationError as error:
        raise PolicyError(f"{source}: {_describe(error)}") from None


def _describe(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(document)"
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"field {where}: {message}")
    return "; ".join(problems)
