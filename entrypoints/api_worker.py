"""One API worker process of `casebook serve --workers N` (uvicorn's app factory)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI

from api.app import create_app
from api.metrics import SharedPoolFigures, process_ended
from api.read_models import ReadModels
from casebook.database import parse_database_url
from casebook.settings import get_settings
from entrypoints.cli.serve import write_side
from entrypoints.logging import configure_logging
from projections.sla.policies import target_book


def worker_app() -> FastAPI:
    """Open this worker's write side on the database its parent opened; close it on exit."""
    settings = get_settings()
    configure_logging(settings)
    if settings.database_url is None:
        raise RuntimeError("a worker needs CASEBOOK_DATABASE_URL from `casebook serve`")
    metrics_dir = settings.api_metrics_dir
    if metrics_dir is None:
        raise RuntimeError("a worker needs CASEBOOK_API_METRICS_DIR from `casebook serve`")
    database = parse_database_url(settings.database_url)
    resources = ExitStack()
    casebook, keys = resources.enter_context(write_side(database, settings))
    read_models = ReadModels(database, target_book(settings))
    app = create_app(
        casebook, keys, database, settings, read_models, shared_metrics_dir=metrics_dir
    )
    stop_figures = threading.Event()
    figures = threading.Thread(
        target=SharedPoolFigures().run, args=(stop_figures,), name="pool-figures", daemon=True
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        figures.start()
        try:
            yield
        finally:
            stop_figures.set()
            figures.join(timeout=2)
            # This process's pools are closed now: its live gauges must stop counting.
            process_ended(metrics_dir)
            resources.close()

    app.router.lifespan_context = lifespan
    return app
