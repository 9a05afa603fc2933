"""Group commit: commands that arrive together are saved in one transaction.

Leader/follower: a caller that finds no batch in progress becomes the leader and
processes whatever is queued (its own command included) in its own thread, with no
hand-off to a writer thread; callers arriving meanwhile queue up and wait, and the
leader takes them as the next batch before it leaves. The processor may defer a
command (a second one for an aggregate already in the batch): it goes back to the
front of the queue, so each aggregate's commands still run in arrival order.

Callers that must not block (an event loop, a connection from another process)
`submit_nowait` instead and get a future: when none of them can lead, a drain thread
leads for them until the queue is empty.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Command = TypeVar("Command")
Context = TypeVar("Context")
Result = TypeVar("Result")


@dataclass
class Pending(Generic[Command, Context, Result]):
    """A submitted command waiting for its result, or for its turn to lead."""

    command: Command
    context: Context
    future: Future[Result] = field(default_factory=Future)
    wake: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    blocking: bool = True  # a thread waits on `wake` and can lead


class GroupCommitWriter(Generic[Command, Context, Result]):
    """Runs submitted commands in batches, one batch at a time.

    Every waiting caller sleeps on its own event: finishing a batch wakes exactly
    the callers whose commands it finished, and leadership passes to the oldest
    waiting caller, so no wake-up is wasted on threads that must sleep again.
    """

    def __init__(
        self,
        process: Callable[
            [list[Pending[Command, Context, Result]]], list[Pending[Command, Context, Result]]
        ],
        *,
        max_batch: int,
    ) -> None:
        self._process = process
        self._max_batch = max_batch
        self._queue: deque[Pending[Command, Context, Result]] = deque()
        self._lock = threading.Lock()
        self._leading = False
        self._closed = False
        self._drain_wanted = threading.Event()
        self._drainer: threading.Thread | None = None

    def submit(self, command: Command, context: Context) -> Result:
        """Run a command (alone or with others) and return its result or raise its error."""
        return self.submit_many([(command, context)])[0].result()

    def submit_many(self, items: list[tuple[Command, Context]]) -> list[Future[Result]]:
        """Run commands that arrived together; return once every one of them ran."""
        if not items:
            return []
        wake = threading.Event()  # one for all of them: any may be handed the lead
        mine: list[Pending[Command, Context, Result]] = [
            Pending(command, context, wake=wake) for command, context in items
        ]
        with self._lock:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._queue.extend(mine)
            if not self._leading:
                self._leading = mine[0].leads = True
        while True:
            if any(pending.leads for pending in mine):
                self._lead_until_done(mine)
                break
            if all(pending.future.done() for pending in mine):
                break
            wake.wait()
            wake.clear()
        return [pending.future for pending in mine]

    def submit_nowait(self, command: Command, context: Context) -> Future[Result]:
        """Queue a command without blocking; the future resolves when it ran."""
        pending: Pending[Command, Context, Result] = Pending(command, context, blocking=False)
        self._enqueue(pending)
        if pending.leads:
            self._start_drainer()
            self._drain_wanted.set()
        return pending.future

    async def run(self, command: Command, context: Context) -> Result:
        """Run a command from an event loop: queued without blocking, awaited."""
        return await asyncio.wrap_future(self.submit_nowait(command, context))

    def close(self) -> None:
        """Refuse new commands; those already submitted finish."""
        with self._lock:
            self._closed = True
        self._drain_wanted.set()

    def _enqueue(self, pending: Pending[Command, Context, Result]) -> None:
        """Queue a non-blocking command; it leads (through the drainer) if no one does."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._queue.append(pending)
            if not self._leading:
                self._leading = pending.leads = True

    def _start_drainer(self) -> None:
        with self._lock:
            if self._drainer is not None:
                return
            self._drainer = threading.Thread(target=self._drain, name="group-commit", daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        while True:
            self._drain_wanted.wait()
            self._drain_wanted.clear()
            with self._lock:
                stop = self._closed and not self._leading
            if stop:
                return
            self._lead_until_done(None)

    def _lead_until_done(self, mine: list[Pending[Command, Context, Result]] | None) -> None:
        """Run batches until all of `mine` are done (for the drainer: the queue is empty)."""
        try:
            while True:
                with self._lock:
                    if mine is None and not self._queue:
                        break
                    if mine is not None and all(pending.future.done() for pending in mine):
                        break
                    count = min(len(self._queue), self._max_batch)
                    batch = [self._queue.popleft() for _ in range(count)]
                deferred = self._run(batch)
                with self._lock:
                    self._queue.extendleft(reversed(deferred))
                for pending in batch:
                    if pending.future.done() and pending.blocking:
                        pending.wake.set()
        except BaseException as error:
            if mine is not None:  # the caller stops waiting: its queued commands go
                own = {id(pending) for pending in mine}
                with self._lock:
                    self._queue = deque(p for p in self._queue if id(p) not in own)
                for pending in mine:
                    if not pending.future.done():
                        pending.future.set_exception(error)
            raise
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            successor = self._queue[0]
            successor.leads = successor.blocking
        if successor.blocking:
            successor.wake.set()
        else:
            self._drain_wanted.set()  # a non-blocking caller queued: the drainer exists

    def _run(
        self, batch: list[Pending[Command, Context, Result]]
    ) -> list[Pending[Command, Context, Result]]:
        try:
            return self._process(batch)
        except BaseException as error:  # never leave a caller waiting forever
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            if not isinstance(error, Exception):
                raise  # Ctrl-C: the leader stops (`_lead_until_done` withdraws its own)
            return []
