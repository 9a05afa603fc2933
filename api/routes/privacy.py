"""Personal data: erase it (crypto-shredding) or export a data subject's (docs/privacy.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from api.deps import Caller, CasebookApp, GuardedRoute
from api.privacy_views import ErasureBody, ErasureView, SubjectDataView
from api.problems import problem_responses
from api.routes.commanding import READ_RESPONSES
from casebook.personal_data import Erasure, erase, export
from domain.values import Channel

router = APIRouter(prefix="/privacy", tags=["privacy"], route_class=GuardedRoute)


@router.post("/erasures", responses=problem_responses(401, 403, 404, 422, 429, 503))
async def erase_personal_data(
    body: ErasureBody, caller: Caller, casebook: CasebookApp
) -> ErasureView:
    """Erase an organisation's or a data subject's personal data for good: their data
    keys are destroyed, every read shows their personal fields as erased, and each case
    and organisation reached records who erased it, when and why. SLA figures and the
    audit log stay verifiable. Long for a large organisation (one event per case)."""
    erasure = Erasure(body.organisation_id, body.subject, body.reason)
    report = await run_in_threadpool(erase, casebook, erasure, caller.actor(Channel.API))
    return ErasureView.of(report)


@router.get("/subjects/{subject}", responses=READ_RESPONSES)
def export_subject_data(
    subject: Annotated[str, Path(min_length=1, max_length=200)],
    caller: Caller,
    casebook: CasebookApp,
) -> SubjectDataView:
    """Every personal field kept of a data subject's cases, event by event (an access
    request); erased ones read as erased."""
    return SubjectDataView.model_validate(export(casebook, subject))
