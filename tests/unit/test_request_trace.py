"""A request joins the caller's W3C trace with a span of its own, or starts a trace."""

from __future__ import annotations

import pytest

from api.tracing import request_trace
from consumers.records import trace_id

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_request_continues_the_callers_trace_with_a_span_of_its_own() -> None:
    trace = request_trace({"traceparent": CALLER, "tracestate": "congo=t61rcWkgMzE"})

    version, trace_id_, span_id, flags = trace.traceparent.split("-")
    assert (version, trace_id_, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id == trace.span_id != "00f067aa0ba902b7"
    assert trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace.tracestate == "congo=t61rcWkgMzE"
    assert trace.joined


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "not a traceparent"},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},  # zero trace
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},  # zero span
        {"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},  # version ff
        {"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},  # upper case
    ],
)
def test_without_a_valid_traceparent_a_request_starts_an_unsampled_trace(
    headers: dict[str, str],
) -> None:
    trace = request_trace(headers | {"tracestate": "congo=t61rcWkgMzE"})

    version, trace_id_, span_id, flags = trace.traceparent.split("-")
    assert (version, flags) == ("00", "00")
    assert trace_id_ == trace.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"
    assert int(trace_id_, 16) and int(span_id, 16)
    assert trace.tracestate is None  # a caller's state belongs to the caller's trace
    assert not trace.joined


def test_two_requests_without_a_trace_start_two_traces() -> None:
    assert request_trace({}).trace_id != request_trace({}).trace_id


def test_a_consumer_reads_the_trace_id_of_a_record_and_ignores_a_malformed_header() -> None:
    assert trace_id((("ce_traceparent", CALLER.encode()),)) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id((("ce_traceparent", b"garbage"),)) is None
    assert trace_id((("ce_subject", b"x"),)) is None
