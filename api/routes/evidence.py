"""Evidence routes (role `auditor` only): bundles of audit entries with their proofs.

The answer is the same zip `casebook audit export` writes; `casebook audit verify-bundle`
checks it offline. Its manifest is signed with the audit signing key, which the API
process loads as the checkpointer does (`CASEBOOK_AUDIT_SIGNING_KEY_FILE`; generated in
the data directory when embedded); without one the bundle is refused, 503
`evidence-is-signed`. It streams: the refusals (no such case, no key, a log that no
longer matches its checkpoints) come before the first byte; then the zip is sent as it
is written, so an organisation of any size costs the worker little memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.deps import AppSettings, Caller, CasebookApp, GuardedRoute, Reads
from api.problems import problem_responses
from api.read_models import ReadModels
from api.schemas import QueryInstant
from casebook.settings import Settings
from projections.audit.evidence import (
    EvidenceCannotBeSigned,
    EvidenceRequest,
    EvidenceRequestInvalid,
    exporting,
)
from projections.audit.signing import SigningKeyUnavailable, load_signing_key

router = APIRouter(prefix="/audit", tags=["audit"], route_class=GuardedRoute)
ZIP = "application/zip"
RESPONSES = {
    200: {"content": {ZIP: {}}, "description": "The evidence bundle (a zip)."},
    **problem_responses(401, 403, 404, 409, 422, 429, 503),
}
Since = Annotated[
    QueryInstant | None,
    Query(description="Entries that happened from this instant (with offset)."),
]
Until = Annotated[
    QueryInstant | None,
    Query(description="Entries that happened before this instant (with offset)."),
]


@router.get("/cases/{case_id}/evidence", response_class=Response, responses=RESPONSES)
def export_case_evidence(
    case_id: UUID,
    caller: Caller,
    settings: AppSettings,
    reads: Reads,
    casebook: CasebookApp,
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    """An evidence bundle of the case's audit chains (case and SLA) over a period."""
    casebook.get_case(case_id)  # 404 when there is no such case
    asked = EvidenceRequest(
        case_id=str(case_id), since=_aware(since, "since"), until=_aware(until, "until")
    )
    return _bundle(settings, reads, asked, f"case-{case_id}")


@router.get(
    "/organisations/{organisation_id}/evidence", response_class=Response, responses=RESPONSES
)
def export_organisation_evidence(
    organisation_id: UUID,
    caller: Caller,
    settings: AppSettings,
    reads: Reads,
    casebook: CasebookApp,
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    """An evidence bundle of the organisation's audit chain and its cases' over a period."""
    casebook.get_organisation(organisation_id)  # 404 when there is no such organisation
    asked = EvidenceRequest(
        organisation_id=str(organisation_id),
        since=_aware(since, "since"),
        until=_aware(until, "until"),
    )
    return _bundle(settings, reads, asked, f"organisation-{organisation_id}")


def _aware(at: datetime | None, name: str) -> datetime | None:
    if at is not None and at.tzinfo is None:
        raise EvidenceRequestInvalid(f"{name} needs a UTC offset", f"query.{name}")
    return at


def _bundle(
    settings: Settings, reads: ReadModels, asked: EvidenceRequest, name: str
) -> StreamingResponse:
    if asked.since is not None and asked.until is not None and asked.since >= asked.until:
        raise EvidenceRequestInvalid("since must be before until", "query.until")
    try:
        key = load_signing_key(settings)
    except SigningKeyUnavailable as error:
        raise EvidenceCannotBeSigned(
            f"Evidence bundles are signed, and this API process has no signing key: {error}"
        ) from None
    chunks = _bundle_chunks(reads, asked, key)
    next(chunks)  # opens the snapshot: a refusal is a problem response, not a cut-off zip
    return StreamingResponse(
        _sent(chunks),
        media_type=ZIP,
        headers={"Content-Disposition": f'attachment; filename="evidence-{name}.zip"'},
    )


def _bundle_chunks(
    reads: ReadModels, asked: EvidenceRequest, key: Ed25519PrivateKey
) -> Generator[bytes, None, None]:
    """b"" once the bundle's snapshot is open and checked, then the bundle's bytes; the
    read connection is held until the last byte (or until closed)."""
    with reads.connection() as conn, exporting(conn, asked, now=datetime.now(UTC)) as bundle:
        yield b""
        yield from bundle.chunks(key)


async def _sent(chunks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """Each chunk read in the thread pool (reading blocks on PostgreSQL); the generator is
    closed there too however the response ends, so its connection goes back to the pool."""
    try:
        while (chunk := await run_in_threadpool(next, chunks, None)) is not None:
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(chunks.close)
