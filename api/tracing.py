"""W3C Trace Context for API requests: join the caller's trace, or start one.

Each request is one span of a trace. When the caller sends a valid `traceparent` its
trace id and flags carry on and this request gets a span id of its own; otherwise
(absent or malformed, which the spec says to ignore) a new trace starts here, not
sampled, since casebook records no spans itself. The request's own `traceparent` (and
the caller's `tracestate`, kept as is) go with the commands it sends, so the relay can
publish them and a consumer join its work to this request. Parsing and formatting are
OpenTelemetry's propagator's; no tracing SDK is needed for that.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class RequestTrace:
    """This request's span: its ids (hex, for logs) and the headers that continue it."""

    trace_id: str
    span_id: str
    traceparent: str
    tracestate: str | None
    joined: bool  # the caller sent a valid traceparent


def request_trace(headers: Mapping[str, str]) -> RequestTrace:
    """The span of a request whose headers are `headers` (lower-case names)."""
    caller = trace.get_current_span(_PROPAGATOR.extract(headers)).get_span_context()
    joined = caller.is_valid
    span = SpanContext(
        trace_id=caller.trace_id if joined else _nonzero(128),
        span_id=_nonzero(64),
        is_remote=False,
        trace_flags=caller.trace_flags if joined else TraceFlags(TraceFlags.DEFAULT),
        trace_state=caller.trace_state if joined else None,
    )
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(NonRecordingSpan(span)))
    return RequestTrace(
        trace_id=f"{span.trace_id:032x}",
        span_id=f"{span.span_id:016x}",
        traceparent=carrier["traceparent"],
        tracestate=carrier.get("tracestate") or None,
        joined=joined,
    )


def _nonzero(bits: int) -> int:
    """A random id of `bits` bits; all zeros is invalid in Trace Context."""
    while not (value := secrets.randbits(bits)):
        pass
    return value
