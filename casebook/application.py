"""The write side: commands in, events out, through eventsourcing on PostgreSQL.

Commands are run by one writer thread in batches (group commit): each command is
checked against its aggregate, and the aggregates of the whole batch are saved in
one transaction together with idempotency records, case index rows, the origins of
commands that came through the API and the messages their events decided to send. If
that transaction fails on a conflict, every command of the batch is retried alone, so
one conflicting command never sinks the others.

It stays one module so that a batch's life (prepare, save together, retry alone, answer)
reads from top to bottom; the rows a batch writes are in `casebook.batch_rows`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
)

from casebook import commands as c
from casebook import idempotency, incident_index
from casebook.batch_rows import (
    Item,
    Prepared,
    changes_listing,
    incident_rows,
    index_row,
    notification_rows,
    one_per_aggregate,
    origin_rows,
    result_of,
)
from casebook.database import Database
from casebook.errors import (
    CaseNotFound,
    IncidentNotFound,
    OrganisationNotFound,
    VersionConflict,
    WriteUnavailable,
    first_line,
)
from casebook.event_store import EventStore
from casebook.freshness import fast_forward
from casebook.handlers import Loader, Work, handle, target_id
from casebook.metrics import WRITE_BATCH_SECONDS, WRITE_BATCH_SIZE
from casebook.policy_source import load_policy
from casebook.settings import Settings
from casebook.store_reads import StoreReads
from casebook.writer import GroupCommitWriter
from casebook.writer_process import RemoteWriter
from domain.cases import ServiceRequest
from domain.errors import DomainError
from domain.incidents import ServiceIncident
from domain.organisations import Organisation
from domain.policy import Policy
from privacy.sealing import holds_personal_data, scope_of

log = structlog.get_logger("casebook.write")


RETRIES_ALONE = 3
OTHERS_WRITE_WINDOW_S = 60.0


class CommandWriter(Protocol):
    """Where commands run: this process's group-commit writer or a writer process's."""

    def submit(self, command: c.Command, context: c.CommandContext) -> c.CommandResult: ...

    def submit_many(
        self, items: list[tuple[c.Command, c.CommandContext]]
    ) -> list[Future[c.CommandResult]]: ...

    def submit_nowait(
        self, command: c.Command, context: c.CommandContext
    ) -> Future[c.CommandResult]: ...

    async def run(self, command: c.Command, context: c.CommandContext) -> c.CommandResult: ...

    def close(self) -> None: ...


class Casebook(StoreReads):
    """Runs commands against cases, organisations and incidents; reads them back
    (`StoreReads`)."""

    def __init__(
        self,
        store: EventStore,
        policy: Policy,
        clock: Callable[[], datetime],
        max_batch: int,
        writer: CommandWriter | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._fresh = Repository(event_store=store.events)  # reads never trust the cache
        self._others_write_until = 0.0  # monotonic time; see _save_together
        self._open_incidents = incident_index.OpenIncidents(
            store.recorder.datastore.get_connection  # type: ignore[attr-defined]
        )
        self._writer: CommandWriter = writer or GroupCommitWriter(
            self._process, max_batch=max_batch
        )

    @classmethod
    def connect(
        cls,
        database: Database,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        policy: Policy | None = None,
        writer_address: str | None = None,
    ) -> Casebook:
        """Open the event store on `database` (creating its tables if needed).

        With `writer_address`, commands run in the writer process listening there
        (see `casebook.writer_process`); this process only reads, and the writer's
        process made the tables.
        """
        store = EventStore.open(database, settings, create_tables=writer_address is None)
        return cls(
            store,
            policy or load_policy(settings.policy_file),
            clock or (lambda: datetime.now(UTC)),
            settings.write_batch_max,
            RemoteWriter(writer_address) if writer_address is not None else None,
        )

    def close(self) -> None:
        """Refuse new commands and release connections."""
        self._writer.close()
        self.store.close()

    # --- commands -------------------------------------------------------------

    def execute(self, command: c.Command, context: c.CommandContext) -> c.CommandResult:
        """Run one command; its events are stored when this returns."""
        return self._writer.submit(command, context)

    async def run(self, command: c.Command, context: c.CommandContext) -> c.CommandResult:
        """Run one command from an event loop without blocking it."""
        return await self._writer.run(command, context)

    def execute_together(
        self, items: list[tuple[c.Command, c.CommandContext]]
    ) -> list[Future[c.CommandResult]]:
        """Run commands that arrived together; each future holds its result or error."""
        return self._writer.submit_many(items)

    def _process(self, batch: list[Item]) -> list[Item]:
        batch, deferred = one_per_aggregate(batch)
        self._open_incidents.forget()  # read again by the batch's first opening
        if time.monotonic() < self._others_write_until:
            targets = [t for t in (target_id(item.command) for item in batch) if t is not None]
            fast_forward(self.store, targets)
        started = time.perf_counter()
        self._prepare_and_save(batch, retry_as_batch=True)
        WRITE_BATCH_SECONDS.observe(time.perf_counter() - started)
        WRITE_BATCH_SIZE.observe(len(batch))
        return deferred

    def _prepare_and_save(self, batch: list[Item], *, retry_as_batch: bool) -> None:
        ready: list[Prepared] = []
        refused: list[tuple[Item, Exception]] = []
        for item in batch:
            try:
                ready.append(self._prepare(item))
            except (OperationalError, InterfaceError) as error:
                # The store is unreachable: every other command would wait as long.
                for other in batch:
                    self._evict(target_id(other.command))
                self._unavailable([i for i in batch if not i.future.done()], error)
                return
            except Exception as error:
                self._evict(target_id(item.command))  # in case it failed half-way
                refused.append((item, error))
        self._refuse(refused)
        if ready:
            self._save_together(ready, retry_as_batch=retry_as_batch)

    def _refuse(self, refused: list[tuple[Item, Exception]]) -> None:
        # A retried command may fail only because its first attempt succeeded (the
        # severity is already assigned, the version moved on): answer those from the
        # idempotency store. Looking only on failure keeps the happy path at one
        # transaction per batch.
        stored = self._stored_responses([item for item, _ in refused])
        for item, error in refused:
            if not self._answer_from_store(item, stored):
                item.future.set_exception(error)

    def _save_together(self, ready: list[Prepared], *, retry_as_batch: bool) -> None:
        began = time.perf_counter()
        try:
            self._save(ready)
        except IntegrityError:
            log.info("write.batch.conflict", commands=len(ready))
            # Another process writes too: keep cached aggregates current for a while.
            self._others_write_until = time.monotonic() + OTHERS_WRITE_WINDOW_S
            if retry_as_batch:
                # The failed save evicted its aggregates: they reload fresh.
                self._prepare_and_save([p.item for p in ready], retry_as_batch=False)
                return
            for prepared in ready:
                self._retry_alone(prepared.item)
        except PersistenceError as error:
            self._unavailable([prepared.item for prepared in ready], error)
        else:
            for prepared in ready:
                prepared.item.future.set_result(prepared.result)
            log.debug(
                "write.batch.saved",
                commands=len(ready),
                ms=round((time.perf_counter() - began) * 1000, 2),
            )

    def _unavailable(self, items: list[Item], error: Exception) -> None:
        log.warning(
            "write.batch.unavailable",
            commands=len(items),
            error=type(error).__name__,
            reason=first_line(error),
        )
        failure = WriteUnavailable(f"event store unavailable: {type(error).__name__}")
        for item in items:
            item.future.set_exception(failure)

    def _retry_alone(self, item: Item) -> None:
        for _attempt in range(RETRIES_ALONE):
            self._evict(target_id(item.command))
            if self._answer_from_store(item, self._stored_responses([item])):
                return
            try:
                prepared = self._prepare(item)
                self._save([prepared])
            except IntegrityError as error:
                log.info(
                    "write.retry.conflict",
                    error=type(error).__name__,
                    reason=first_line(error),
                )
                for aggregate_id, _ in prepared.reads:
                    self._evict(aggregate_id)
                continue
            except PersistenceError as error:
                item.future.set_exception(WriteUnavailable(f"event store unavailable: {error}"))
                return
            except Exception as error:
                self._evict(target_id(item.command))
                item.future.set_exception(error)
                return
            item.future.set_result(prepared.result)
            return
        item.future.set_exception(WriteUnavailable("concurrent writers kept conflicting"))

    def _prepare(self, item: Item) -> Prepared:
        loaded: dict[UUID, Any] = {}
        read_at: dict[UUID, int] = {}

        def cached(kind: type[Any], missing: Callable[[UUID], DomainError]) -> Any:
            def load(aggregate_id: UUID, consulted: bool = True) -> Any:
                if aggregate_id not in loaded:
                    loaded[aggregate_id] = self._load(aggregate_id, kind, missing)
                if consulted:
                    read_at[aggregate_id] = loaded[aggregate_id].version
                return loaded[aggregate_id]

            return load

        incident = cached(ServiceIncident, IncidentNotFound)
        loader = Loader(
            case=cached(ServiceRequest, CaseNotFound),
            organisation=cached(Organisation, OrganisationNotFound),
            incident=incident,
            incidents_in_force=lambda at: [
                i for i in map(incident, self._open_incidents.started_by(at)) if i.in_force(at)
            ],
        )
        expected = item.context.expected_version
        written = target_id(item.command)
        if expected is not None and written is not None:
            self._check_version(written, expected)
        work = Work(loader, self.policy, item.context.actor, self._at)
        try:
            aggregate = handle(item.command, work)
        except BaseException:
            # A rule refused after another aggregate the command touched took events (an
            # opening uses the organisation's caller verification, then an incident is
            # shown first): the cache shares those objects, so forget what was changed.
            for touched in loaded.values():
                if touched.pending_events:
                    self._evict(touched.id)
            raise
        reads = tuple((i, v) for i, v in read_at.items() if i != aggregate.id)
        also = tuple(a for i, a in loaded.items() if i != aggregate.id and a.pending_events)
        return Prepared(item, aggregate, result_of(aggregate), reads, also)

    def _check_version(self, aggregate_id: UUID, expected: int) -> None:
        current = self._cached_version(aggregate_id)
        if current != expected:
            self._evict(aggregate_id)  # the cache may be behind another process
            current = self._cached_version(aggregate_id)
        if current != expected:
            raise VersionConflict(aggregate_id, expected, current)

    def _cached_version(self, aggregate_id: UUID) -> int:
        try:
            return int(self.store.repository.get(aggregate_id).version)
        except AggregateNotFoundError:
            return 0

    def _load(
        self, aggregate_id: UUID, kind: type[Any], missing: Callable[[UUID], DomainError]
    ) -> Any:
        try:
            aggregate: object = self.store.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise missing(aggregate_id) from None
        if not isinstance(aggregate, kind):
            raise missing(aggregate_id)
        return aggregate

    def _at(self, last_change: datetime | None) -> datetime:
        # Another process's clock may run slightly behind: never record an event
        # as happening before the aggregate's previous one.
        now = self._clock()
        return max(now, last_change) if last_change is not None else now

    def _save(self, ready: list[Prepared]) -> None:
        records = [idempotency.record(p.item.command, p.item.context, p.result) for p in ready]
        index = [index_row(p.aggregate) for p in ready if changes_listing(p.aggregate)]
        origins = [row for p in ready for row in origin_rows(p)]
        saved = [a for p in ready for a in (p.aggregate, *p.also)]
        written = {a.id for a in saved}
        scopes = {a.id: scope for a in saved if (scope := scope_of(a)) and holds_personal_data(a)}
        # An aggregate written in this batch was read in its batch state: nothing to check.
        reads = sorted({r for p in ready for r in p.reads if r[0] not in written})
        try:
            self.store.mapper.seal_streams(scopes)
            self.store.save(
                *saved,
                idempotency=[r for r in records if r is not None],
                case_index=index,
                incident_index=incident_rows(ready),
                notifications=notification_rows(ready),
                expected_reads=reads,
                origins=origins,
                live_keys=self.store.mapper.sealing_keys(),
            )
        except BaseException:
            # Cached aggregates hold events not stored, a data key may have been erased.
            self.store.mapper.forget_keys()
            for aggregate_id in written:
                self._evict(aggregate_id)
            raise

    def _evict(self, aggregate_id: UUID | None) -> None:
        cache = self.store.repository.cache
        if aggregate_id is None or cache is None:
            return
        with contextlib.suppress(KeyError):
            cache.get(aggregate_id, evict=True)

    def _stored_responses(self, batch: list[Item]) -> dict[idempotency.Key, tuple[str, Any]]:
        keys = [k for k in (idempotency.key_of(item.context) for item in batch) if k]
        if not keys:
            return {}
        with self.store.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            return idempotency.lookup(conn, keys)

    def _answer_from_store(
        self, item: Item, stored: dict[idempotency.Key, tuple[str, Any]]
    ) -> bool:
        answer = idempotency.stored_answer(item.command, item.context, stored)
        if answer is None:
            return False
        if isinstance(answer, Exception):
            item.future.set_exception(answer)
        else:
            item.future.set_result(answer)
        return True
