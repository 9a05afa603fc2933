"""`casebook serve`: the HTTP API over the write side, on uvicorn."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer

from api.connections import connection_options
from api.keys import KeyStore
from api.metrics import forget_pool, watch_pool
from casebook.database import Database
from casebook.settings import Settings, get_settings
from entrypoints.background import STOP_SECONDS
from entrypoints.cli.db import command_database
from entrypoints.logging import configure_logging

if TYPE_CHECKING:
    import uvicorn

    from casebook.application import Casebook

log = structlog.get_logger("entrypoints.cli")
# In-flight requests may take this long to finish after a stop signal, while the
# background parts stop beside them.
GRACEFUL_SECONDS = round(STOP_SECONDS)


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: api_host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: api_port).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="API processes (default: api_workers).")
    ] = None,
) -> None:
    """Serve the HTTP API until Ctrl-C or SIGTERM (migrates the embedded database first)."""
    settings = get_settings()
    configure_logging(settings)
    host, port = host or settings.api_host, port or settings.api_port
    workers = workers or settings.api_workers
    with signals_stop_once(), command_database(settings) as db:
        if workers > 1:
            serve_workers(db, settings, host, port, workers)
            return
        with write_side(db, settings) as (casebook, keys):
            serve_api(casebook, keys, db, settings, host, port)


def serve_workers(db: Database, settings: Settings, host: str, port: int, workers: int) -> None:
    """Run `workers` API processes on one port, and the write side in this process.

    The API processes parse HTTP, authenticate and read; they hand every command to
    this process's writer over a Unix socket, so all of them share one aggregate cache
    and one group commit. They reach the database this process opened (embedded or
    not), the writer and their shared metrics directory through settings handed down
    in their environment.
    """
    import uvicorn

    from casebook.application import Casebook
    from casebook.writer_process import writer_service
    from privacy.master_key import EMBEDDED_KEY_NAME

    casebook = Casebook.connect(db, settings)
    try:
        with writer_service(casebook) as writer, shared_metrics_dir(settings):
            os.environ["CASEBOOK_DATABASE_URL"] = db.url
            if settings.privacy_master_key_file is None and settings.uses_embedded_database:
                # The workers see the database as external: name the key made beside it.
                key = settings.data_dir.resolve() / EMBEDDED_KEY_NAME
                os.environ["CASEBOOK_PRIVACY_MASTER_KEY_FILE"] = str(key)
            os.environ["CASEBOOK_WRITER_ADDRESS"] = writer.address
            # The writer's batch leader must get the interpreter lock back quickly
            # after each database round trip, as in serve_api.
            sys.setswitchinterval(0.0005)
            # uvicorn's supervisor handles SIGINT and SIGTERM itself (and keeps them
            # handled after): it stops the API processes, then the writer closes.
            with suppress(KeyboardInterrupt):
                uvicorn.run(
                    "entrypoints.api_worker:worker_app",
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers,
                    log_config=None,
                    access_log=False,
                    server_header=False,
                    timeout_graceful_shutdown=GRACEFUL_SECONDS,
                    **forwarded_header_options(settings),
                    **connection_options(settings),
                )
    finally:
        casebook.close()


@contextmanager
def shared_metrics_dir(settings: Settings) -> Iterator[Path]:
    """An empty directory for the API processes' metric files, named in the environment
    they inherit (`api_metrics_dir`, and prometheus-client's PROMETHEUS_MULTIPROC_DIR,
    which it reads when imported); a temporary one is removed at the end.
    """
    configured = settings.api_metrics_dir
    try:
        if configured is None:
            path = Path(tempfile.mkdtemp(prefix="casebook-metrics-"))
        else:
            path = configured.resolve()
            path.mkdir(parents=True, exist_ok=True)
            # A killed run's files would be summed with this run's: only prometheus-client's
            # own files go, in case the setting names a directory holding anything else.
            for stale in path.glob("*.db"):
                stale.unlink()
    except OSError as error:
        where = configured or tempfile.gettempdir()
        typer.echo(
            f"casebook: error: metrics directory {where}: {error.strerror or error}", err=True
        )
        raise typer.Exit(1) from None
    os.environ["CASEBOOK_API_METRICS_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    try:
        yield path
    finally:
        if configured is None:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def write_side(db: Database, settings: Settings) -> Iterator[tuple[Casebook, KeyStore]]:
    """The write-side application and a key store on a small pool; both closed on exit.

    With `settings.writer_address` the application sends its commands to that writer
    process instead of saving them itself.
    """
    from psycopg_pool import ConnectionPool

    from casebook.application import Casebook  # imported late: other commands never need it

    # Key lookups are one short query per request: a few connections serve many requests.
    pool: ConnectionPool[Any] = ConnectionPool(
        db.url, min_size=1, max_size=max(2, settings.db_pool_size // 2), open=True, name="keys"
    )
    watch_pool(pool)
    try:
        casebook = Casebook.connect(db, settings, writer_address=settings.writer_address)
        try:
            yield casebook, KeyStore(pool.connection, cache_seconds=settings.api_key_cache_seconds)
        finally:
            casebook.close()
    finally:
        forget_pool(pool)
        pool.close()


def serve_api(
    casebook: Casebook,
    keys: KeyStore,
    db: Database,
    settings: Settings,
    host: str,
    port: int,
    on_stop: Callable[[], None] = lambda: None,
) -> None:
    """Build the FastAPI app and run uvicorn in this thread until a signal stops it.

    `on_stop` runs as soon as the signal arrives, while uvicorn still finishes the
    requests in flight, so other parts of the process can stop beside it.
    """
    import uvicorn

    from api.app import create_app
    from api.read_models import ReadModels
    from projections.sla.policies import target_book

    app = create_app(casebook, keys, db, settings, ReadModels(db, target_book(settings)))
    # Request threads mostly wait on I/O; the one leading a group commit must get the GIL
    # back quickly after each database round trip, or every batch waits 5 ms per step.
    sys.setswitchinterval(0.0005)
    # log_config=None: uvicorn's records flow through our structlog handler, masked.
    # access_log=False: our middleware logs one line per request, without query strings.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        **forwarded_header_options(settings),
        **connection_options(settings),
    )
    # uvicorn shuts down gracefully, then re-raises the signal that stopped it: swallow
    # that, so the callers' cleanup (closing pools, stopping the database) runs next.
    with suppress(KeyboardInterrupt):
        _server(config, on_stop).run()


def forwarded_header_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: believe X-Forwarded-For only from `api_trusted_proxies`.

    uvicorn's own default trusts 127.0.0.1, so any local process could choose the address
    the audit trail records for its commands; here nobody is trusted unless configured.
    """
    trusted = settings.api_trusted_proxies
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


def _server(config: uvicorn.Config, on_stop: Callable[[], None]) -> uvicorn.Server:
    """uvicorn's server, telling `on_stop` the moment a signal asks it to stop."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            on_stop()
            super().handle_exit(sig, frame)

    return Server(config)


@contextmanager
def signals_stop_once() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt once; repeats while stopping are logged.

    uvicorn handles both while it serves, then re-raises the one that stopped it here.
    SIGTERM's default action would end the process on the spot, and a second Ctrl-C
    would interrupt, half-way, the cleanup that stops the broker and the database.
    """
    stopping = False

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            log.info("casebook.stop.repeated", signal=signal.Signals(signum).name)
            return
        stopping = True
        raise KeyboardInterrupt

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
