"""Running one command for a route: the actor, the guards, the response headers."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from api.errors import VersionGuardsDisagree
from api.problems import problem_responses
from api.views import CommandAccepted
from casebook.application import Casebook
from casebook.commands import Command, CommandContext
from casebook.keys import Principal
from domain.values import Actor, Channel


def run(
    casebook: Casebook,
    command: Command,
    caller: Principal,
    response: Response,
    *,
    idempotency_key: str | None,
    if_match: int | None,
    body_version: int | None = None,
    channel: Channel = Channel.API,
    location: str | None = None,
) -> CommandAccepted:
    """Execute `command` as `caller`; set ETag (and Location) on `response`."""
    if if_match is not None and body_version is not None and if_match != body_version:
        raise VersionGuardsDisagree(
            f"If-Match names version {if_match} but expected_version is {body_version}."
        )
    actor = Actor(caller.principal_id, caller.role, channel)
    context = CommandContext(
        actor=actor,
        idempotency_key=idempotency_key,
        expected_version=if_match if if_match is not None else body_version,
    )
    result = casebook.execute(command, context)
    response.headers["ETag"] = etag(result.version)
    if location is not None:
        response.headers["Location"] = location.format(id=result.aggregate_id)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return CommandAccepted.of(result)


def etag(version: int) -> str:
    """The strong ETag of an aggregate version."""
    return f'"{version}"'


_ETAG_HEADER = {"ETag": {"description": 'The new version, e.g. "4".', "schema": {"type": "string"}}}
_LOCATION_HEADER = {"Location": {"description": "The new resource.", "schema": {"type": "string"}}}


def command_responses(*, created: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of a command route: its success headers and every problem."""
    success = (
        {201: {"headers": _ETAG_HEADER | _LOCATION_HEADER}}
        if created
        else {200: {"headers": _ETAG_HEADER}}
    )
    return success | problem_responses(401, 403, 404, 409, 422, 503)


READ_RESPONSES = problem_responses(401, 403, 404, 422, 503)
