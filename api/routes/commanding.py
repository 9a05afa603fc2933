"""Running one command for a route: the actor, the guards, the response headers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response

from api.deps import (
    BearerKey,
    IdempotencyKeyHeader,
    IfMatchHeader,
    guarded_principal,
    request_origin,
    version_named,
)
from api.errors import VersionGuardsDisagree
from api.keys import Principal
from api.problems import problem_responses
from api.schemas import CommandBody
from api.views import CommandAccepted
from casebook.application import Casebook
from casebook.commands import Command, CommandContext
from domain.values import Channel


async def run(
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
    """Execute `command` as `caller`, from the request's origin; set ETag (and Location)."""
    if if_match is not None and body_version is not None and if_match != body_version:
        raise VersionGuardsDisagree(
            f"If-Match names version {if_match} but expected_version is {body_version}."
        )
    actor = caller.actor(channel)
    context = CommandContext(
        actor=actor,
        idempotency_key=idempotency_key,
        expected_version=if_match if if_match is not None else body_version,
        origin=request_origin(),
    )
    result = await casebook.run(command, context)
    response.headers["ETag"] = etag(result.version)
    if location is not None:
        response.headers["Location"] = location.format(id=result.aggregate_id)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return CommandAccepted.of(result)


class CommandRunner:
    """What every update route needs to run its command, gathered by one dependency."""

    def __init__(
        self,
        casebook: Casebook,
        caller: Principal,
        response: Response,
        idempotency_key: str | None,
        if_match: int | None,
    ) -> None:
        self._casebook = casebook
        self._caller = caller
        self._response = response
        self._idempotency_key = idempotency_key
        self._if_match = if_match

    @property
    def acts_for_customer(self) -> bool:
        """Whether the request is the customer portal's, for a customer admin."""
        return self._caller.on_behalf_of is not None

    async def __call__(self, command: Command, body: CommandBody | None = None) -> CommandAccepted:
        """Run `command` with the request's key, If-Match and the body's expected version."""
        return await run(
            self._casebook,
            command,
            self._caller,
            self._response,
            idempotency_key=self._idempotency_key,
            if_match=self._if_match,
            body_version=body.expected_version if body is not None else None,
        )


async def _command_runner(
    request: Request,
    response: Response,
    _: BearerKey,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
) -> CommandRunner:
    # One dependency with its headers as parameters, not a tree of small ones: FastAPI
    # solves each dependency per request, and on the busiest routes that adds up.
    return CommandRunner(
        request.app.state.casebook,
        guarded_principal(request),
        response,
        idempotency_key,
        version_named(if_match),
    )


Runner = Annotated[CommandRunner, Depends(_command_runner)]


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
    return success | problem_responses(401, 403, 404, 409, 413, 422, 429, 503)


READ_RESPONSES = problem_responses(401, 403, 404, 422, 429, 503)
