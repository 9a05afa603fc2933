"""Audited reads: every read of case data through the API leaves an access record first.

`GuardedRoute` gives every guarded GET route `record_access` as its first dependency,
unless `NOT_CASE_DATA` says why the route reads no case data. So the record is written
after the key and the role were checked and before the route reads anything, in a
short transaction of its own; when it cannot be written the read is refused (503,
rule `access-is-recorded`) and nothing is served unrecorded. A new GET route is
audited until someone lists it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any
from uuid import UUID

import psycopg
import structlog
from fastapi import Header, Request
from fastapi.concurrency import run_in_threadpool

from api.errors import AccessNotRecorded
from api.read_models import ReadModels
from projections.audit.queries import Access

log = structlog.get_logger("casebook.api.audit")

# Guarded GET routes that read no case data, and why.
NOT_CASE_DATA: Mapping[str, str] = {
    "get_organisation": "an organisation's profile, no case data",
    "list_support_lines": "the policy's public phone numbers, no case data",
    "sla_compliance_report": "counts and rates over many cases, no case's own data",
    "satisfaction_report": "survey rates over many cases, no case's own data",
    "pipeline_status": "the relay's and consumers' states and lags, no case data",
    "metrics": "counts, lags and durations of the whole process, no case data",
    "get_incident": "a service incident, published to every customer, no case data",
    "service_health": "the service health dashboard, published to every customer",
}
REASON_HEADER = "X-Access-Reason"
# Why the caller reads: printable ASCII (it goes into a header and the access log).
REASON_PATTERN = r"^[\x21-\x7e][\x20-\x7e]{0,199}$"


def is_audited(name: str, methods: Iterable[str]) -> bool:
    """True for the routes whose reads must leave an access record."""
    return "GET" in {m.upper() for m in methods} and name not in NOT_CASE_DATA


async def record_access(
    request: Request,
    reason: Annotated[
        str | None,
        Header(
            alias=REASON_HEADER,
            pattern=REASON_PATTERN,
            description="Why you read this case data (1-200 printable ASCII characters); "
            "kept in the access record auditors list.",
        ),
    ] = None,
) -> None:
    """Write this read's access record, or refuse the read."""
    principal = request.state.principal
    route = request.scope.get("route")
    access = Access(
        principal_id=principal.principal_id,
        role=principal.role.value,
        route=getattr(route, "name", None) or "<unmatched>",
        method=request.method,
        path=request.url.path,
        case_id=_uuid(request.path_params.get("case_id")),
        organisation_id=_uuid(request.path_params.get("organisation_id")),
        reason=reason,
        request_id=getattr(request.state, "request_id", None),
        client_address=request.client.host if request.client else None,
        on_behalf_of=principal.on_behalf_of,
    )
    reads: ReadModels = request.app.state.read_models
    try:
        await run_in_threadpool(reads.record_access, access)
    except psycopg.Error as error:
        log.error("api.access_not_recorded", route=access.route, error=type(error).__name__)
        raise AccessNotRecorded(
            "This read's access record could not be written, so nothing is served; retry later."
        ) from None


def _uuid(value: Any) -> str | None:
    try:
        return str(UUID(str(value))) if value is not None else None
    except ValueError:
        return None
