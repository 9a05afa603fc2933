"""One API worker process of `casebook serve --workers N` (uvicorn's app factory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI

from api.app import create_app
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
    database = parse_database_url(settings.database_url)
    resources = ExitStack()
    casebook, keys = resources.enter_context(write_side(database, settings))
    read_models = ReadModels(database, target_book(settings))
    app = create_app(casebook, keys, database, settings, read_models)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            resources.close()

    app.router.lifespan_context = lifespan
    return app
