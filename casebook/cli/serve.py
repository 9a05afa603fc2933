"""`casebook serve`: the HTTP API over the write side, on uvicorn."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from casebook.cli.db import command_database
from casebook.database import Database
from casebook.keys import KeyStore
from casebook.logging import configure_logging
from casebook.settings import Settings, get_settings

if TYPE_CHECKING:
    from casebook.application import Casebook


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: api_host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: api_port).")] = None,
) -> None:
    """Serve the HTTP API until Ctrl-C or SIGTERM (migrates the embedded database first)."""
    settings = get_settings()
    configure_logging(settings)
    with command_database(settings) as db, write_side(db, settings) as (casebook, keys):
        host, port = host or settings.api_host, port or settings.api_port
        serve_api(casebook, keys, db, settings, host, port)


@contextmanager
def write_side(db: Database, settings: Settings) -> Iterator[tuple[Casebook, KeyStore]]:
    """The write-side application and a key store on a small pool; both closed on exit."""
    from psycopg_pool import ConnectionPool

    from casebook.application import Casebook  # imported late: other commands never need it

    # Key lookups are one short query per request: a few connections serve many requests.
    pool: ConnectionPool[Any] = ConnectionPool(
        db.url, min_size=1, max_size=max(2, settings.db_pool_size // 2), open=True, name="keys"
    )
    try:
        casebook = Casebook.connect(db, settings)
        try:
            yield casebook, KeyStore(pool.connection)
        finally:
            casebook.close()
    finally:
        pool.close()


def serve_api(
    casebook: Casebook, keys: KeyStore, db: Database, settings: Settings, host: str, port: int
) -> None:
    """Build the FastAPI app and run uvicorn in this thread until it is told to stop."""
    import uvicorn

    from api.app import create_app

    app = create_app(casebook, keys, db, settings)
    # log_config=None: uvicorn's records flow through our structlog handler, masked.
    config = uvicorn.Config(app, host=host, port=port, log_config=None, server_header=False)
    # uvicorn shuts down gracefully, then re-raises the signal that stopped it: swallow
    # that, so the callers' cleanup (closing pools, stopping the database) runs next.
    with _sigterm_interrupts(), suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Make SIGTERM raise KeyboardInterrupt like Ctrl-C does.

    uvicorn re-raises the signal that stopped it; with SIGTERM's default action the
    process would die on the spot, skipping the cleanup that stops the embedded server.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
