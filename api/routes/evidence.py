"""Evidence routes (role `auditor` only): bundles of audit entries with their proofs.

The answer is the same zip `casebook audit export` writes; `casebook audit verify-bundle`
checks it offline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import Caller, CasebookApp, GuardedRoute
from api.problems import problem_responses
from api.read_models import ReadModels
from projections.audit.evidence import EvidenceRequest, EvidenceRequestInvalid, export_bundle

router = APIRouter(prefix="/audit", tags=["audit"], route_class=GuardedRoute)
ZIP = "application/zip"
RESPONSES = {
    200: {"content": {ZIP: {}}, "description": "The evidence bundle (a zip)."},
    **problem_responses(401, 403, 404, 409, 422, 503),
}
Since = Annotated[
    datetime | None, Query(description="Entries that happened from this instant (with offset).")
]
Until = Annotated[
    datetime | None, Query(description="Entries that happened before this instant (with offset).")
]


async def _read_models(request: Request) -> ReadModels:
    models: ReadModels = request.app.state.read_models
    return models


Reads = Annotated[ReadModels, Depends(_read_models)]


@router.get("/cases/{case_id}/evidence", response_class=Response, responses=RESPONSES)
def export_case_evidence(
    case_id: UUID,
    caller: Caller,
    reads: Reads,
    casebook: CasebookApp,
    since: Since = None,
    until: Until = None,
) -> Response:
    """An evidence bundle of the case's audit chains (case and SLA) over a period."""
    casebook.get_case(case_id)  # 404 when there is no such case
    asked = EvidenceRequest(
        case_id=str(case_id), since=_aware(since, "since"), until=_aware(until, "until")
    )
    return _bundle(reads, asked, f"case-{case_id}")


@router.get(
    "/organisations/{organisation_id}/evidence", response_class=Response, responses=RESPONSES
)
def export_organisation_evidence(
    organisation_id: UUID,
    caller: Caller,
    reads: Reads,
    casebook: CasebookApp,
    since: Since = None,
    until: Until = None,
) -> Response:
    """An evidence bundle of the organisation's audit chain and its cases' over a period."""
    casebook.get_organisation(organisation_id)  # 404 when there is no such organisation
    asked = EvidenceRequest(
        organisation_id=str(organisation_id),
        since=_aware(since, "since"),
        until=_aware(until, "until"),
    )
    return _bundle(reads, asked, f"organisation-{organisation_id}")


def _aware(at: datetime | None, name: str) -> datetime | None:
    if at is not None and at.tzinfo is None:
        raise EvidenceRequestInvalid(f"{name} needs a UTC offset", f"query.{name}")
    return at


def _bundle(reads: ReadModels, asked: EvidenceRequest, name: str) -> Response:
    if asked.since is not None and asked.until is not None and asked.since >= asked.until:
        raise EvidenceRequestInvalid("since must be before until", "query.until")
    with reads.connection() as conn:
        export = export_bundle(conn, asked, now=datetime.now(UTC))
    return Response(
        export.data,
        media_type=ZIP,
        headers={"Content-Disposition": f'attachment; filename="evidence-{name}.zip"'},
    )
