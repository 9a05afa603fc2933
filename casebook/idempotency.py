"""Answers to retried commands: the first response stored under a client's key.

Records are written by the same transaction as the command's events (see
`casebook.store`); this module builds them and looks them up.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from typing import Any

from casebook import commands as c
from casebook.errors import IdempotencyKeyReused
from casebook.event_types import json_safe
from casebook.store import IdempotencyRecord

Key = tuple[str, str]  # (principal id, idempotency key): keys are scoped per principal
_LOOKUP = (
    "SELECT principal_id, idempotency_key, fingerprint, response FROM casebook_idempotency"
    " WHERE (principal_id, idempotency_key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
)


def fingerprint(command: c.Command) -> str:
    """A digest of the request, to tell a retry from a reuse of the key."""
    asked = {f.name: getattr(command, f.name) for f in fields(command) if f.compare}
    body = {"command": type(command).__name__, "fields": json_safe(asked)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def key_of(context: c.CommandContext) -> Key | None:
    """The scoped key of a command's context, if it carries one."""
    if context.idempotency_key is None:
        return None
    return (context.actor.principal_id, context.idempotency_key)


def record(
    command: c.Command, context: c.CommandContext, result: c.CommandResult
) -> IdempotencyRecord | None:
    """What to store with the command's events, if it carries a key."""
    key = key_of(context)
    if key is None:
        return None
    return IdempotencyRecord(key[0], key[1], fingerprint(command), result.to_json())


def lookup(connection: Any, keys: list[Key]) -> dict[Key, tuple[str, Any]]:
    """Stored (fingerprint, response) by key, in one query."""
    if not keys:
        return {}
    rows = connection.execute(_LOOKUP, ([p for p, _ in keys], [k for _, k in keys])).fetchall()
    return {
        (r["principal_id"], r["idempotency_key"]): (r["fingerprint"], r["response"]) for r in rows
    }


def stored_answer(
    command: c.Command, context: c.CommandContext, stored: dict[Key, tuple[str, Any]]
) -> c.CommandResult | IdempotencyKeyReused | None:
    """The first answer to this retry, a refusal for a reused key, or None if not stored."""
    key = key_of(context)
    found = stored.get(key) if key is not None else None
    if found is None:
        return None
    first_fingerprint, response = found
    if first_fingerprint != fingerprint(command):
        return IdempotencyKeyReused(
            f"Idempotency-Key {context.idempotency_key!r} was first used for a different request"
        )
    return c.CommandResult.from_json(response, replayed=True)
