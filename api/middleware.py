"""Per-request context: a request id on every log line and response, one access line.

A pure ASGI middleware (not BaseHTTPMiddleware), so the context variables it binds
reach the route's threadpool worker and nothing is buffered.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = structlog.get_logger("casebook.api.access")
HEADER = "X-Request-ID"
# Accept the caller's id only when it cannot smuggle anything into a log line.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Accept or create X-Request-ID, echo it, bind it for logging, log the request once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            principal = state.get("principal")
            route = scope.get("route")
            # The route template, not the raw path: paths may carry contact details.
            access_log.info(
                "http.request",
                method=scope["method"],
                path=getattr(route, "path", None) or "<unmatched>",
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
                principal=getattr(principal, "principal_id", None),
                request_id=request_id,
            )
            structlog.contextvars.clear_contextvars()


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _ACCEPTABLE_ID.match(text) else None
    return None
