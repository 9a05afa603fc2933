"""Request dependencies as `Annotated` aliases, and the guard every route runs first.

`GuardedRoute` authenticates the bearer key and checks the role matrix before FastAPI
reads the body, so a request without a valid key is a 401 (and one with the wrong
role a 403) whatever else is wrong with it. It also states where the request comes
from (`request_origin`), which every command it sends records.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Annotated, Any
from uuid import UUID

import psycopg
import structlog
from fastapi import Depends, Header, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import get_name

from api import access, portal, roles
from api.errors import NotAuthenticated, RoleNotAllowed
from api.keys import KeyStore, Principal
from api.rate_limits import RateLimits
from api.read_models import ReadModels
from casebook.application import Casebook
from casebook.commands import Origin
from casebook.settings import Settings
from messaging.notifications import Notifier

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from `casebook keys create`: `Authorization: Bearer cbk_...`.",
)
_IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"  # visible ASCII, as in the IETF draft
_IF_MATCH = r'^\s*(\*|(W/)?"[0-9]{1,15}"|[0-9]{1,15})\s*$'  # one version ETag, or *
_BOUND_PATH_IDS = ("case_id", "organisation_id")
# Where the request being handled comes from. Set by GuardedRoute around the route (one
# task: the route's own context), so every command route records it, including those
# that call `commanding.run` themselves.
_ORIGIN: ContextVar[Origin | None] = ContextVar("casebook_request_origin", default=None)


async def authorize(request: Request, route_name: str) -> Principal:
    """Authenticate the bearer key, check the role matrix, bind who asks to the logs."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send an API key as `Authorization: Bearer <key>`.")
    keys: KeyStore = request.app.state.keys
    limits: RateLimits = request.app.state.rate_limits
    address = request.client.host if request.client else "unknown"
    limits.refuse_if_spent("auth_failures", address)  # no more guessing from there
    # A key seen a moment ago is answered from memory, without a thread-pool hop.
    try:
        principal = keys.recently_verified(token.strip()) or await run_in_threadpool(
            keys.authenticate, token.strip()
        )
    except psycopg.OperationalError:
        if route_name not in roles.ANSWERS_WITHOUT_DATABASE:
            raise
        # The database is down and this route exists to say so: a key this process
        # verified recently still counts (nobody can revoke it meanwhile).
        principal = keys.remembered(token.strip(), roles.KEY_MEMORY_SECONDS)
    if principal is None:
        limits.hit("auth_failures", address)
        raise NotAuthenticated("The API key is unknown, revoked or malformed.")
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(
        principal=principal.principal_id, role=principal.role.value
    )
    for name in _BOUND_PATH_IDS:
        value = request.path_params.get(name)
        if value is not None and _is_uuid(value):
            structlog.contextvars.bind_contextvars(**{name: str(value)})
    if not roles.is_allowed(route_name, principal.role):
        raise RoleNotAllowed(f"The role {principal.role.value} may not use {route_name}.")
    principal = portal.acting_principal(request, principal)
    request.state.principal = principal
    # The portal's key serves many customers: each of them has the key's limits.
    who = f"{principal.key_id}:{principal.on_behalf_of or ''}"
    limits.hit(_rate_kind(route_name, request.method), who)
    if principal.on_behalf_of is not None:
        structlog.contextvars.bind_contextvars(on_behalf_of=principal.on_behalf_of)
        # Before anything is read or recorded: another organisation's objects are 404.
        await run_in_threadpool(
            portal.check_scope,
            request.app.state.casebook,
            principal.on_behalf_of,
            dict(request.path_params),
        )
    return principal


# The dependencies below never block: `async def` keeps FastAPI from sending each one
# to the thread pool, which would cost a thread hop per dependency per request.


class GuardedRoute(APIRoute):
    """An APIRoute that runs `authorize` before FastAPI parses and validates anything.

    Reads of case data get `access.record_access` as their first dependency: the read
    is recorded (or refused) before the route reads anything.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        name = kwargs.get("name") or get_name(endpoint)
        dependencies = list(kwargs.get("dependencies") or [])
        # include_router builds the route again from this one's dependencies: add it once.
        recorded = any(d.dependency is access.record_access for d in dependencies)
        if access.is_audited(name, kwargs.get("methods") or ["GET"]) and not recorded:
            kwargs["dependencies"] = [Depends(access.record_access), *dependencies]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        name = self.name

        async def guarded(request: Request) -> Response:
            principal = await authorize(request, name)
            token = _ORIGIN.set(origin_of(request, principal))
            try:
                return await handler(request)
            finally:
                _ORIGIN.reset(token)

        return guarded


def origin_of(request: Request, principal: Principal) -> Origin:
    """The API key, client address, request id and trace of an authenticated request."""
    trace = getattr(request.state, "trace", None)
    return Origin(
        api_key_id=principal.key_id,
        client_address=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
        traceparent=trace.traceparent if trace else None,
        tracestate=trace.tracestate if trace else None,
    )


def request_origin() -> Origin | None:
    """Where the request being handled comes from (None outside a guarded route)."""
    return _ORIGIN.get()


BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
"""The bearer scheme, for the docs: `GuardedRoute` has checked the key already."""
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=_IDEMPOTENCY_KEY,
        description="Retry-safe key (1-255 visible ASCII characters): the same key "
        "with the same request returns the first response without running it again.",
    ),
]
"""The Idempotency-Key header, validated against its pattern."""
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=_IF_MATCH,
        description='The version you last read, as its ETag ("3"); a stale one is a 409.',
    ),
]
"""The If-Match header, validated against its pattern (read it with `version_named`)."""


def _rate_kind(route_name: str, method: str) -> str:
    if route_name in roles.PIN_ROUTES:
        return "verifications"
    return "reads" if method in ("GET", "HEAD") else "writes"


def guarded_principal(request: Request) -> Principal:
    """The principal `GuardedRoute` authenticated for this request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route outside GuardedRoute: fail closed
        raise NotAuthenticated("This route is not guarded; refusing.")
    return principal


def version_named(if_match: str | None) -> int | None:
    """The version an If-Match value names; None for `*` or no header."""
    version = if_match.strip().removeprefix("W/").strip('"') if if_match is not None else "*"
    return None if version == "*" else int(version)


async def _current_principal(request: Request, _: BearerKey) -> Principal:
    return guarded_principal(request)


async def _casebook(request: Request) -> Casebook:
    casebook: Casebook = request.app.state.casebook
    return casebook


async def _read_models(request: Request) -> ReadModels:
    models: ReadModels = request.app.state.read_models
    return models


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _idempotency_key(key: IdempotencyKeyHeader = None) -> str | None:
    return key


def _is_uuid(value: object) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


Caller = Annotated[Principal, Depends(_current_principal)]
"""The authenticated principal whose role the matrix allowed for this route."""
CasebookApp = Annotated[Casebook, Depends(_casebook)]
"""The write-side application."""


async def _notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]
"""The Idempotency-Key header, validated."""
Reads = Annotated[ReadModels, Depends(_read_models)]
"""The read models beside the write side (the SLA tracker, the audit trail)."""
AppSettings = Annotated[Settings, Depends(_settings)]
"""The app's settings."""
NotifierApp = Annotated[Notifier, Depends(_notifier)]
"""Where messages to people (caller verification codes) go."""
