"""One writer for several API processes: commands travel over a local socket.

`casebook serve --workers N` runs the write side in the `serve` process itself
(`WriterService`) and lets the N API processes parse HTTP. Each API process hands its
commands to the writer through a `RemoteWriter` (a Unix socket, one connection per
process); the writer runs them with the group-commit writer and sends every result back.

Why: one process owns the aggregate cache, so the API processes never conflict on
versions, and everything that arrives while a batch is being saved forms the next
batch, however many processes sent it. HTTP parsing and saving no longer take turns
on one interpreter lock.

It stays one module because both ends of one small wire protocol (the writer's server
and the API processes' client) live here, so they cannot drift apart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import pickle
import struct
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from multiprocessing import Pipe
from multiprocessing.connection import Client, Connection, Listener, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import structlog

from casebook import commands as c
from casebook.errors import WriteUnavailable

if TYPE_CHECKING:
    from casebook.application import Casebook

log = structlog.get_logger("casebook.writer")
# Messages are lists: of (request id, command, context) one way, and of
# (request id, result or None, packed error or None) back. They are pickled whole, so
# the context's origin (API key, client address, request id) reaches the writer too.
Request = tuple[int, c.Command, c.CommandContext]
Reply = tuple[int, c.CommandResult | None, tuple[Any, ...] | None]


class WriterService:
    """Accepts API processes on a Unix socket and runs their commands on `casebook`.

    One thread reads every request that has arrived, from all connections, runs them
    together (one group commit), answers each connection with one message, and reads
    again: what arrives during a save is the next batch.
    """

    def __init__(self, casebook: Casebook, address: str) -> None:
        self._casebook = casebook
        self._listener = Listener(address, family="AF_UNIX")
        self.address = address
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._wake_reader, self._wake_writer = Pipe(duplex=False)
        self._closed = False
        self._threads = [
            threading.Thread(target=self._accept, name="writer-accept", daemon=True),
            threading.Thread(target=self._serve, name="writer-serve", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop accepting API processes and serving them."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self._wake()
        self._threads[1].join(timeout=10)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_writer.send_bytes(b"")

    def _accept(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._connections.append(conn)
            self._wake()

    def _serve(self) -> None:
        while not self._closed:
            with self._lock:
                connections = list(self._connections)
            arrived: list[tuple[Connection, Request]] = []
            for ready in wait([self._wake_reader, *connections]):
                if ready is self._wake_reader:
                    self._wake_reader.recv_bytes()
                    continue
                assert isinstance(ready, Connection)
                arrived.extend((ready, request) for request in self._read(ready))
            if arrived:
                self._run(arrived)
        with self._lock:
            for conn in self._connections:
                conn.close()

    def _read(self, conn: Connection) -> list[Request]:
        requests: list[Request] = []
        try:
            while True:
                requests.extend(conn.recv())
                if not conn.poll():
                    return requests
        except (EOFError, OSError):
            with self._lock:
                self._connections.remove(conn)
            conn.close()
            return requests  # answered: its process may still be reading

    def _run(self, arrived: list[tuple[Connection, Request]]) -> None:
        try:
            done = self._casebook.execute_together([(cmd, ctx) for _, (_, cmd, ctx) in arrived])
        except Exception as error:  # closing (or a bug): answer, never leave callers waiting
            log.warning("writer.batch.failed", error=type(error).__name__)
            failed: Future[c.CommandResult] = Future()
            failed.set_exception(WriteUnavailable(f"the writer failed: {error}"))
            done = [failed] * len(arrived)
        replies: dict[Connection, list[Reply]] = {}
        for (conn, (request_id, _, _)), future in zip(arrived, done, strict=True):
            replies.setdefault(conn, []).append(_reply(request_id, future))
        for conn, answers in replies.items():
            _send(conn, answers)


def _reply(request_id: int, done: Future[c.CommandResult]) -> Reply:
    error = done.exception()
    if error is not None:
        return (request_id, None, pack_error(error))
    return (request_id, done.result(), None)


def _send(conn: Connection, answers: list[Reply]) -> None:
    try:
        conn.send(answers)
    except OSError:
        pass  # that API process is gone; its requests die with it
    except Exception as failure:  # an answer that does not pickle
        unavailable = pack_error(WriteUnavailable(f"unsendable answer: {type(failure).__name__}"))
        with contextlib.suppress(OSError):
            conn.send([(request_id, None, unavailable) for request_id, _, _ in answers])


class RemoteWriter:
    """The group-commit writer of another process, as seen from an API process.

    Blocking callers share one connection read by a thread; coroutines (`run`) go
    through a connection their event loop reads itself, so an answer reaches the
    route without a thread hand-off.
    """

    def __init__(self, address: str) -> None:
        self._address = address
        self._links: dict[asyncio.AbstractEventLoop, asyncio.Future[_LoopLink]] = {}
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

    def submit_many(
        self, items: list[tuple[c.Command, c.CommandContext]]
    ) -> list[Future[c.CommandResult]]:
        """Run commands in the writer process; return once every one of them ran."""
        futures = [self.submit_nowait(command, context) for command, context in items]
        concurrent.futures.wait(futures)
        return futures

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
                self._conn.send([(request_id, command, context)])
        except OSError as error:
            self._waiting.pop(request_id, None)
            future.set_exception(WriteUnavailable(f"the writer process is gone: {error}"))
        return future

    async def run(self, command: c.Command, context: c.CommandContext) -> c.CommandResult:
        """Run a command in the writer process without blocking the running event loop."""
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is None or (link.done() and (link.cancelled() or link.exception())):
            for closed in [other for other in self._links if other.is_closed()]:
                del self._links[closed]  # a finished asyncio.run, say
            link = self._links[loop] = loop.create_task(self._connect(loop))
        # Shielded: a caller cancelled while the loop connects must not cancel the
        # connection every later caller of this loop waits for.
        return await (await asyncio.shield(link)).run(command, context)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _LoopLink:
        try:
            _, link = await loop.create_unix_connection(_LoopLink, self._address)
        except OSError as error:
            raise WriteUnavailable(f"the writer process is unreachable: {error}") from error
        return link

    def close(self) -> None:
        """Disconnect; commands still waiting fail as unavailable."""
        with contextlib.suppress(OSError):
            self._conn.close()
        for loop, link in self._links.items():
            if link.done() and not link.cancelled() and link.exception() is None:
                with contextlib.suppress(RuntimeError):  # that loop is closed already
                    loop.call_soon_threadsafe(link.result().close)

    def _receive(self) -> None:
        while True:
            try:
                answers: list[Reply] = self._conn.recv()
            except (EOFError, OSError):
                break
            for request_id, result, error in answers:
                future = self._waiting.pop(request_id)
                if error is not None:
                    future.set_exception(unpack_error(error))
                else:
                    future.set_result(result)  # type: ignore[arg-type]
        self._gone = True
        log.warning("writer.link.lost", waiting=len(self._waiting))
        while self._waiting:
            _, future = self._waiting.popitem()
            future.set_exception(WriteUnavailable("the writer process is gone"))


class _LoopLink(asyncio.Protocol):
    """One event loop's connection to the writer, framed as `multiprocessing.connection`
    frames messages (a 4-byte signed big-endian length, then the pickle), so the
    writer reads it like any other connection."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._waiting: dict[int, asyncio.Future[c.CommandResult]] = {}
        self._ids = itertools.count()
        self._buffer = bytearray()
        self._gone: str | None = None

    async def run(self, command: c.Command, context: c.CommandContext) -> c.CommandResult:
        if self._gone is not None or self._transport is None:
            raise WriteUnavailable(f"the writer process is gone: {self._gone}")
        request_id = next(self._ids)
        answer: asyncio.Future[c.CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        message = pickle.dumps([(request_id, command, context)], pickle.HIGHEST_PROTOCOL)
        self._transport.write(_frame(message))
        try:
            return await answer
        finally:
            self._waiting.pop(request_id, None)  # answered, or the request was cancelled

    def close(self) -> None:
        self._gone = "closed by this process"
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's: trust the protocol, not the class.
        self._transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 4:
            (size,) = struct.unpack_from("!i", self._buffer)
            header = 4 if size >= 0 else 12  # -1: an 8-byte length follows
            if size < 0:
                if len(self._buffer) < 12:
                    return
                (size,) = struct.unpack_from("!Q", self._buffer, 4)
            if len(self._buffer) < header + size:
                return
            answers: list[Reply] = pickle.loads(self._buffer[header : header + size])
            del self._buffer[: header + size]
            for request_id, result, error in answers:
                answer = self._waiting.get(request_id)
                if answer is None or answer.done():
                    continue  # its request was cancelled (the client went away)
                if error is not None:
                    answer.set_exception(unpack_error(error))
                else:
                    answer.set_result(result)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._gone is None:  # not our own close: the writer went away
            self._gone = str(exc) if exc is not None else "the writer closed the connection"
            log.warning("writer.link.lost", waiting=len(self._waiting), reason=self._gone)
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(WriteUnavailable("the writer process is gone"))


def _frame(message: bytes) -> bytes:
    """`message` as `multiprocessing.connection.Connection.send_bytes` frames it."""
    if len(message) > 0x7FFFFFFF:
        return struct.pack("!iQ", -1, len(message)) + message
    return struct.pack("!i", len(message)) + message


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
