"""Liveness and readiness probes: no key needed, no case data returned."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.errors import NotReady
from api.problems import problem_responses
from api.views import Health
from casebook.database import check_ready

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """The process is alive (says nothing about the database)."""
    return Health(status="ok")


@router.get("/readyz", responses=problem_responses(503))
def readyz(request: Request) -> Health:
    """The database answers: this process can serve requests."""
    if not check_ready(request.app.state.database):
        raise NotReady("The database does not answer.")
    return Health(status="ready")
