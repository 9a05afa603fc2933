"""One writer for several API processes: commands travel over a local socket.

`casebook serve --workers N` runs the write side in its own process (`WriterService`)
and lets the N API processes parse HTTP. Each API process hands its commands to the
writer through a `RemoteWriter` (a Unix socket, one connection per process); the
writer runs them with the group-commit writer and sends every result back.

Why: one process owns the aggregate cache, so the API processes never conflict on
versions, and everything that arrives while a batch is being saved forms the next
batch, however many processes sent it. HTTP parsing and saving no longer take turns
on one interpreter lock.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from casebook import commands as c
from casebook.errors import WriteUnavailable

if TYPE_CHECKING:
    from casebook.application import Casebook

log = structlog.get_logger("casebook.writer")
# (request id, command, context) one way; (request id, result or packed error) back.
Request = tuple[int, c.Command, c.CommandContext]
Reply = tuple[int, c.CommandResult | None, tuple[Any, ...] | None]


class WriterService:
    """Accepts API processes on a Unix socket and runs their commands on `casebook`."""

    def __init__(self, casebook: Casebook, address: str) -> None:
        self._casebook = casebook
        self._listener = Listener(address, family="AF_UNIX")
        self.address = address
        self._accepting = threading.Thread(target=self._accept, name="writer-accept", daemon=True)
        self._accepting.start()

    def close(self) -> None:
        """Stop accepting API processes; their connections end as they disconnect."""
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=self._serve, args=(conn,), name="writer-conn", daemon=True
            ).start()

    def _serve(self, conn: Connection) -> None:
        sending = threading.Lock()

        def reply(request_id: int, done: Future[c.CommandResult]) -> None:
            error = done.exception()
            message: Reply = (
                (request_id, None, pack_error(error))
                if error is not None
                else (request_id, done.result(), None)
            )
            with sending, contextlib.suppress(OSError):
                conn.send(message)

        with conn:
            while True:
                try:
                    request_id, command, context = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    future = self._casebook.submit(command, context)
                except RuntimeError as error:  # closing
                    future = Future()
                    future.set_exception(WriteUnavailable(str(error)))
                future.add_done_callback(lambda done, i=request_id: reply(i, done))


class RemoteWriter:
    """The group-commit writer of another process, as seen from an API process."""

    def __init__(self, address: str) -> None:
        self._conn = Client(address, family="AF_UNIX")
        self._sending = threading.Lock()
        self._waiting: dict[int, Future[c.CommandResult]] = {}
        self._ids = itertools.count()
        self._gone = False
        self._receiving = threading.Thread(target=self._receive, name="writer-link", daemon=True)
        self._receiving.start()

    def submit(self, command: c.Command, context: c.CommandContext) -> c.CommandResult:
        """Run a command in the writer process; return its result or raise its error."""
        return self.submit_nowait(command, context).result()

    def submit_nowait(
        self, command: c.Command, context: c.CommandContext
    ) -> Future[c.CommandResult]:
        """Send a command to the writer process; the future resolves with its answer."""
        future: Future[c.CommandResult] = Future()
        if self._gone:
            future.set_exception(WriteUnavailable("the writer process is gone"))
            return future
        request_id = next(self._ids)
        self._waiting[request_id] = future
        try:
            with self._sending:
                self._conn.send((request_id, command, context))
        except OSError as error:
            self._waiting.pop(request_id, None)
            future.set_exception(WriteUnavailable(f"the writer process is gone: {error}"))
        return future

    def close(self) -> None:
        """Disconnect; commands still waiting fail as unavailable."""
        with contextlib.suppress(OSError):
            self._conn.close()

    def _receive(self) -> None:
        while True:
            try:
                request_id, result, error = self._conn.recv()
            except (EOFError, OSError):
                break
            future = self._waiting.pop(request_id)
            if error is not None:
                future.set_exception(unpack_error(error))
            else:
                future.set_result(result)
        self._gone = True
        log.warning("writer.link.lost", waiting=len(self._waiting))
        while self._waiting:
            _, future = self._waiting.popitem()
            future.set_exception(WriteUnavailable("the writer process is gone"))


def pack_error(error: BaseException) -> tuple[Any, ...]:
    """An exception as plain parts: our errors take other `__init__` arguments than args."""
    if not isinstance(error, Exception):
        error = WriteUnavailable(f"the writer failed: {type(error).__name__}")
    return (type(error), error.args, dict(vars(error)))


def unpack_error(packed: tuple[Any, ...]) -> Exception:
    """The exception `pack_error` took apart, without calling its `__init__`."""
    kind, args, state = packed
    error: Exception = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


@contextlib.contextmanager
def writer_service(casebook: Casebook) -> Iterator[WriterService]:
    """A writer service on a fresh socket in a private directory, closed on exit."""
    with tempfile.TemporaryDirectory(prefix="casebook-writer-") as directory:
        service = WriterService(casebook, str(Path(directory) / "writer.sock"))
        try:
            yield service
        finally:
            service.close()
