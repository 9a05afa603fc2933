"""RFC 9457 problem details: every refusal and failure becomes `application/problem+json`.

`STATUS` is the one table from error classes to HTTP status codes; an error takes the
status of the nearest class in its MRO that the table names, so a new domain rule is a
422 until someone decides otherwise here. Routes never build error responses by hand.
It stays one module: the table, the fields it names and the handlers that read them are
one decision, reviewed together.
"""

from __future__ import annotations

from typing import Any

import eventsourcing.persistence as es
import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from api.errors import (
    AccessNotRecorded,
    NotAuthenticated,
    NotReady,
    RoleNotAllowed,
    VersionGuardsDisagree,
)
from api.portal import OnBehalfOfNotAllowed
from api.rate_limits import RateLimited
from casebook.errors import (
    IdempotencyKeyReused,
    InvalidCursor,
    VersionConflict,
    WriteUnavailable,
)
from domain.cases import errors as case_errors
from domain.errors import DomainError, NotFound, OutOfOrderTimestamp
from domain.incidents import errors as incident_errors
from domain.organisations import errors as org_errors
from messaging.notifications import NotificationNotSent
from projections.audit.evidence import EvidenceCannotBeSigned, EvidenceUnavailable

log = structlog.get_logger("casebook.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://casebook.example/problems/"

STATUS: dict[type[Exception], int] = {
    # who is asking
    NotAuthenticated: 401,
    RoleNotAllowed: 403,
    OnBehalfOfNotAllowed: 403,
    case_errors.SupportStaffOnly: 403,
    case_errors.StaffOrOrganisationAdminOnly: 403,
    case_errors.AgentsSelfAssignOnly: 403,
    case_errors.SatisfactionByCustomerOrSystem: 403,
    incident_errors.SupervisorsManageIncidents: 403,
    # the partner is offered first: a distinct answer, nothing was filed (§1)
    case_errors.PartnerContactNotAcknowledged: 409,
    # so are the service incidents in force that affect the request (§1)
    incident_errors.IncidentShownFirst: 409,
    org_errors.CallerVerificationByStaffOnly: 403,
    # what does not exist (a case, an organisation, an admin or contact to remove)
    NotFound: 404,
    org_errors.UnknownAdmin: 404,
    org_errors.UnknownContact: 404,
    org_errors.UnknownVerification: 404,
    # the target's current state refuses the command: reload, then decide again
    VersionConflict: 409,
    OutOfOrderTimestamp: 409,
    case_errors.CaseIsClosed: 409,
    case_errors.CaseNotResolved: 409,
    case_errors.SeverityAlreadyAssigned: 409,
    case_errors.SeverityNotAssessed: 409,
    case_errors.ResolveNeedsFirstResponse: 409,
    case_errors.NoStandingUnresponsiveRecord: 409,
    case_errors.SatisfactionAlreadyRecorded: 409,
    case_errors.SatisfactionBeforeResolution: 409,
    case_errors.AgentAlreadyAssigned: 409,
    case_errors.CaseAlreadyLinkedToIncident: 409,
    incident_errors.IncidentIsClosed: 409,
    incident_errors.IncidentUnchanged: 409,
    org_errors.AdminAlreadyPresent: 409,
    org_errors.ContactAlreadyRegistered: 409,
    org_errors.LastAdminCannotBeRemoved: 409,
    org_errors.VerificationAlreadyCompleted: 409,
    org_errors.VerificationAlreadyUsed: 409,
    org_errors.VerificationExpired: 409,
    org_errors.VerificationLocked: 409,
    EvidenceUnavailable: 409,
    # every other rule refuses what the request asked for
    DomainError: 422,
    # too many requests: wait Retry-After seconds
    RateLimited: 429,
    # the database is down or refusing: nothing was written, try again later
    WriteUnavailable: 503,
    AccessNotRecorded: 503,
    EvidenceCannotBeSigned: 503,  # no signing key: the operator configures one
    NotReady: 503,
    es.OperationalError: 503,
    es.InterfaceError: 503,
    psycopg.OperationalError: 503,
    psycopg.InterfaceError: 503,
    NotificationNotSent: 503,  # the code did not go out, so nothing was recorded
}

# Where the client should look to fix a refusal that is about one request part.
FIELD_OF: dict[type[DomainError], str] = {
    IdempotencyKeyReused: "header.Idempotency-Key",
    InvalidCursor: "query.after",
    VersionGuardsDisagree: "body.expected_version",
    case_errors.ClosureReasonUnknown: "body.reason",
    org_errors.WrongVerificationCode: "body.code",
    org_errors.VerificationTargetNotRegistered: "body.send_to",
    org_errors.VerificationNotNeeded: "body.caller_phone",
    org_errors.VerificationAlreadyUsed: "body.verification_id",
}


class FieldError(BaseModel):
    """One invalid part of the request."""

    field: str = Field(description="Where: body.severity, path.case_id, header.If-Match, ...")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, which rule refused, how to fix it."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description=f"{TYPE_BASE}<rule>")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request path.")
    rule: str = Field(description="The stable name of the rule that refused the request.")
    request_id: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="Validation errors, one per field."
    )
    current_version: int | None = Field(default=None, description="On 409 version conflicts.")
    partner: dict[str, str] | None = Field(
        default=None,
        description="Rule partner-customers-see-partner-contact-first: the partner's name and "
        "contact, to offer before filing; send partner_contact_acknowledged true to go on.",
    )
    incidents: list[dict[str, Any]] | None = Field(
        default=None,
        description="Rule service-incident-shown-first: the incidents in force that affect "
        "the request (id, summary, services, categories, started_at), to show before "
        "filing; send incident_acknowledged (an id) or incident_unrelated true to go on.",
    )
    expected_version: int | None = None


PROBLEM_DESCRIPTIONS = {
    401: "No valid bearer API key.",
    403: "The key's role may not do this.",
    404: "Not found.",
    409: "Conflicts with the current state (e.g. a stale If-Match version).",
    413: "The request body is larger than the API reads.",
    422: "Invalid request, or refused by a domain rule.",
    429: "Too many requests: retry after Retry-After seconds.",
    503: "The database (or the notifier) is unavailable; nothing was written.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json bodies for `statuses`."""
    return {
        status: {"model": Problem, "description": PROBLEM_DESCRIPTIONS[status]}
        for status in statuses
    }


def status_of(error: BaseException) -> int:
    """The status the table gives the nearest class of `error`; 500 when none."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(
    request: Request,
    *,
    status: int,
    rule: str,
    title: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> JSONResponse:
    """A problem+json response for `request`."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + rule,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "rule": rule,
        "request_id": getattr(request.state, "request_id", None),
        **members,
    }
    content = {key: value for key, value in body.items() if value is not None}
    return JSONResponse(content, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _title(error: BaseException) -> str:
    doc = (type(error).__doc__ or type(error).__name__).strip()
    return doc.splitlines()[0]


async def domain_error(request: Request, error: Exception) -> JSONResponse:
    """Any `DomainError`: its rule, its message, and the status from `STATUS`."""
    assert isinstance(error, DomainError)
    status = status_of(error)
    members: dict[str, Any] = dict(error.details)
    headers: dict[str, str] = {}
    # An error may name the request part at fault itself (one rule, several fields).
    field = getattr(error, "field", None) or FIELD_OF.get(type(error))
    if field is not None:
        members["errors"] = [{"field": field, "message": error.message}]
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="casebook"'
    if status == 503:
        headers["Retry-After"] = "5"
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    return problem(
        request,
        status=status,
        rule=error.rule,
        title=_title(error),
        detail=error.message,
        headers=headers or None,
        **members,
    )


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 naming every invalid field of the request."""
    assert isinstance(error, RequestValidationError)
    errors = [{"field": _field(item), "message": _message(item)} for item in error.errors()]
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return problem(
        request,
        status=422,
        rule="request-is-valid",
        title="The request is invalid.",
        detail=f"Invalid: {fields}.",
        errors=errors,
    )


async def http_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's own refusals (unknown path, wrong method) as problems."""
    assert isinstance(error, HTTPException)
    if error.status_code == 400:  # FastAPI could not decode the body (e.g. not UTF-8)
        return problem(
            request,
            status=422,
            rule="request-is-valid",
            title="The request is invalid.",
            detail="Invalid: body.",
            errors=[{"field": "body", "message": "The body is not UTF-8 encoded JSON."}],
        )
    rule = {404: "route-exists", 405: "method-allowed"}.get(error.status_code, "http-request")
    return problem(
        request,
        status=error.status_code,
        rule=rule,
        title=str(error.detail),
        detail=str(error.detail),
        headers=dict(error.headers or {}),
    )


async def unavailable(request: Request, error: Exception) -> JSONResponse:
    """503: the event store or the database cannot be reached; retry later."""
    # Our own exceptions say why in words of ours (no values written): keep it for operators.
    reason = str(error) if isinstance(error, WriteUnavailable) else None
    log.warning("api.unavailable", error=type(error).__name__, reason=reason)
    return problem(
        request,
        status=503,
        rule="database-available",
        title="The database is unavailable.",
        detail="Nothing was written; retry later.",
        headers={"Retry-After": "5"},
    )


async def server_error(request: Request, error: Exception) -> JSONResponse:
    """500 without internals: the request id leads to the logged traceback."""
    log.error("api.unhandled", exc_info=error)
    return problem(
        request,
        status=500,
        rule="internal-error",
        title="Internal server error.",
        detail="The error was logged with this request's id.",
    )


def install(app: FastAPI) -> None:
    """Register the problem+json exception handlers on `app`."""
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    for cls, status in STATUS.items():
        # A domain error keeps its own rule (e.g. access-is-recorded) even as a 503.
        if status == 503 and not issubclass(cls, DomainError):
            app.add_exception_handler(cls, unavailable)
    app.add_exception_handler(Exception, server_error)


def _field(item: dict[str, Any]) -> str:
    if item.get("type") == "json_invalid":
        return "body"  # its loc is a character offset, not a field
    return ".".join(str(part) for part in item.get("loc", ())) or "request"


def _message(item: dict[str, Any]) -> str:
    if item.get("type") == "json_invalid":
        return f"Malformed JSON: {item.get('ctx', {}).get('error', 'decode error')}."
    return str(item.get("msg", "invalid"))
