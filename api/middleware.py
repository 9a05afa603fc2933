"""Per-request context: a request id on every log line and response, the request's
trace (W3C Trace Context, `api.tracing`), one access line, one observation of the request
duration histogram.

A pure ASGI middleware (not BaseHTTPMiddleware), so the context variables it binds
reach the route's threadpool worker and nothing is buffered.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.tracing import request_trace
from casebook.metrics import REGISTRY

access_log = structlog.get_logger("casebook.api.access")
HEADER = "X-Request-ID"
# Accept the caller's id only when it cannot smuggle anything into a log line.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "<unmatched>"
# Any other method a client invents is counted as OTHER: label values must stay few.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_SECONDS = Histogram(
    "casebook_http_request_duration_seconds",
    "HTTP requests by route template (<unmatched> for paths no route serves), method and "
    "status code, and how long they took in seconds.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


class RequestContext:
    """Accept or create X-Request-ID, echo it, join or start the request's trace, bind
    both for logging, log the request once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        trace = state["trace"] = request_trace(_trace_headers(scope))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, trace_id=trace.trace_id, span_id=trace.span_id
        )
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.append(HEADER, request_id)
                # Never sniffed as another type, never kept by a shared or browser cache.
                headers.append("X-Content-Type-Options", "nosniff")
                headers.append("Cache-Control", "no-store")
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            principal = state.get("principal")
            # The route template, not the raw path: paths may carry contact details, and
            # one label value per raw path would grow the metric without bound.
            path = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            REQUEST_SECONDS.labels(path, method, str(status)).observe(elapsed)
            access_log.info(
                "http.request",
                method=scope["method"],
                path=path,
                status=status,
                ms=round(elapsed * 1000, 1),
                principal=getattr(principal, "principal_id", None),
                request_id=request_id,
                trace_id=trace.trace_id,
            )
            structlog.contextvars.clear_contextvars()


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _ACCEPTABLE_ID.match(text) else None
    return None


def _trace_headers(scope: Scope) -> dict[str, str]:
    """The trace headers as one value each: several `tracestate` lines join with commas
    (RFC 9110 list semantics); several `traceparent` lines are ambiguous, so none counts."""
    parents: list[str] = []
    states: list[str] = []
    for name, value in scope["headers"]:
        if name == b"traceparent":
            parents.append(value.decode("latin-1"))
        elif name == b"tracestate":
            states.append(value.decode("latin-1"))
    headers = {"traceparent": parents[0]} if len(parents) == 1 else {}
    return headers | ({"tracestate": ",".join(states)} if states else {})
