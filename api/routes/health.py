"""Probes and the pipeline's status: no case data.

`/healthz` is about this process being worth keeping (an orchestrator restarts it on
503): a supervised part failing, or behind without progress, for longer than
`part_unhealthy_seconds` makes it unhealthy. `/readyz` is about serving requests now
(the database answers). `/status` shows every part, for operators; `/metrics` the
same and more for Prometheus (public, or for a key when `metrics_require_key`).
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from api.deps import GuardedRoute
from api.errors import NotReady
from api.part_reports import reported_parts, this_process
from api.problems import problem, problem_responses
from api.status_views import PartView, PipelineStatus
from api.views import Health
from casebook.database import check_ready
from casebook.settings import Settings
from casebook.supervision import BOARD

router = APIRouter(tags=["health"])
status_router = APIRouter(tags=["health"], route_class=GuardedRoute)
_METRICS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}
}


@router.get("/healthz", responses=problem_responses(503), response_model=Health)
def healthz(request: Request) -> Health | JSONResponse:
    """The process is alive and none of its parts has been failing or stuck for long."""
    settings: Settings = request.app.state.settings
    troubles = BOARD.troubles(settings.part_unhealthy_seconds)
    if not troubles:
        return Health(status="ok")
    names = ", ".join(sorted(troubles))
    return problem(
        request,
        status=503,
        rule="parts-healthy",
        title="A background part is failing or stuck.",
        detail="; ".join(f"{name}: {why}" for name, why in sorted(troubles.items())),
        parts=[{"part": name, "trouble": why} for name, why in sorted(troubles.items())],
        headers={"X-Unhealthy-Parts": names},
    )


@router.get("/readyz", responses=problem_responses(503))
def readyz(request: Request) -> Health:
    """The database answers: this process can serve requests."""
    if not check_ready(request.app.state.database):
        raise NotReady("The database does not answer.")
    return Health(status="ready")


@status_router.get("/status", name="pipeline_status")
async def pipeline_status(request: Request) -> PipelineStatus:
    """Each relay, consumer, timer and outbox publisher: state, lag, restarts, last error.

    This process's parts come from memory (so they show while the database is down);
    other processes' from what they last wrote to the database, when it answers.
    """
    settings: Settings = request.app.state.settings
    here = this_process()
    now_troubles = BOARD.troubles(settings.part_unhealthy_seconds)
    parts = [
        PartView.of_status(here, status, now_troubles.get(status.name))
        for status in BOARD.snapshot()
    ]
    others = await run_in_threadpool(_reported_elsewhere, request.app.state.database.url, here)
    if others is not None:
        parts += others
    return PipelineStatus(
        process=here, healthy=not now_troubles, others_known=others is not None, parts=parts
    )


def _reported_elsewhere(url: str, here: str) -> list[PartView] | None:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            rows = reported_parts(conn)
    except psycopg.Error:
        return None
    return [PartView.of_report(row) for row in rows if row.process != here]


def metrics_router(require_key: bool) -> APIRouter:
    """`GET /metrics`, guarded (admin, supervisor) when `require_key`, else public."""
    router = APIRouter(tags=["health"], route_class=GuardedRoute if require_key else APIRoute)
    router.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        name="metrics",
        response_class=Response,
        responses=_METRICS_RESPONSE,
    )
    return router


def metrics(request: Request) -> Response:
    """The API's metrics in Prometheus text format (of every API process with `serve
    --workers N`): requests, write batches, parts, pools, and the relay, consumers, SLA
    clocks and audit checkpoints as stored."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
