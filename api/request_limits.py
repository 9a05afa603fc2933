"""Limits every request meets before the app reads it: its client address's rate, the
size of its body and the nesting of its JSON (pure ASGI, inside `RequestContext`).

A body is read here once, up to the limit, and handed on to the app unchanged; one too
large or too deep is refused as problem+json (413, 422) before any route sees it, so
nothing is parsed, authenticated against or written.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.rate_limits import RateLimited, RateLimits
from casebook.settings import Settings

MEDIA_TYPE = "application/problem+json"
_TYPE_BASE = "https://casebook.example/problems/"
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Probes and scrapes come often from one orchestrator or Prometheus: not counted.
_UNCOUNTED = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestLimits:
    """Refuse requests over their address's rate, with a too large or too deep body."""

    def __init__(self, app: ASGIApp, settings: Settings, limits: RateLimits) -> None:
        self.app = app
        self.max_body = settings.api_max_body_bytes
        self.max_depth = settings.api_max_json_depth
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        try:
            if scope["path"] not in _UNCOUNTED:
                self.limits.hit("address", client[0] if client else "unknown")
        except RateLimited as refusal:
            headers = [(b"retry-after", str(refusal.retry_after).encode())]
            await _problem(scope, send, 429, refusal.rule, refusal.message, None, headers)
            return
        if scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._too_large(scope, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await self._too_large(scope, send)
                return
        if _nesting(body) > self.max_depth:
            detail = f"The JSON body nests deeper than {self.max_depth} levels."
            errors = [{"field": "body", "message": detail}]
            await _problem(scope, send, 422, "json-depth-limit", detail, errors)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        detail = f"The request body is larger than {self.max_body} bytes."
        errors = [{"field": "body", "message": detail}]
        await _problem(scope, send, 413, "request-body-size-limit", detail, errors)


def _nesting(body: bytes) -> int:
    """How deep arrays and objects nest in `body` (brackets inside strings do not count);
    0 for a body that is not JSON, which the app refuses itself."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # what comes after the body: a disconnect

    return replay


async def _problem(
    scope: Scope,
    send: Send,
    status: int,
    rule: str,
    detail: str,
    errors: list[dict[str, str]] | None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    state: dict[str, Any] = scope.get("state", {})
    body: dict[str, Any] = {
        "type": _TYPE_BASE + rule,
        "title": detail,
        "status": status,
        "detail": detail,
        "instance": scope["path"],
        "rule": rule,
        "request_id": state.get("request_id"),
    }
    if errors:
        body["errors"] = errors
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(content)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
