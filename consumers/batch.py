"""One polled batch, applied inside the caller's PostgreSQL transaction.

Everything the runtime decides about a batch happens here, in one transaction with the
projection's writes: skipping what this group already consumed, dropping duplicates,
holding back events of parked subjects and of subjects waiting at a sequence gap,
finding and dead-lettering the event a projection fails on, and recording sequences
and offsets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import structlog

from consumers import gaps, state
from consumers.envelope import Envelope, Poison, decode, sequence_key
from consumers.projection import Projection
from consumers.records import Raw
from consumers.state import Conn, DeadLetter, Partition

log = structlog.get_logger("casebook.consumers")


@dataclass
class BatchResult:
    """What one batch did; `next_offsets` is what was stored per partition."""

    records: int = 0
    applied: int = 0
    duplicates: int = 0
    held: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[Partition, int] = field(default_factory=dict)


def default_backoff(attempt: int) -> None:
    """Wait a little longer after each failed attempt (0.1 s, 0.2 s, ...)."""
    time.sleep(min(0.1 * attempt, 1.0))


def apply_batch(
    conn: Conn,
    projection: Projection,
    records: Sequence[Raw],
    *,
    max_attempts: int,
    backoff: Callable[[int], None] = default_backoff,
    contiguous: Collection[str] = (),
) -> BatchResult:
    """Apply `records` (in partition order) to `projection` and record what was consumed.

    On the `contiguous` topics (full names) each subject's sequence goes up by one: an
    event past the next expected number makes its subject wait (consumers/gaps.py).
    """
    group = projection.name
    result = BatchResult(records=len(records))
    stored = state.lock_offsets(conn, group, {(r.topic, r.partition) for r in records})
    # Below the stored offset: another member of the group applied it already.
    fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
    result.duplicates += len(records) - len(fresh)
    for raw in records:
        tp = (raw.topic, raw.partition)
        known = max(result.next_offsets.get(tp, 0), stored.get(tp, 0))
        result.next_offsets[tp] = max(known, raw.offset + 1)

    subjects = {s for s in (r.subject for r in fresh) if s is not None}
    parked = state.lock_parked(conn, group, subjects)  # before reading sequences: see replay
    keys = {sequence_key(r.topic, s) for r in fresh if (s := r.subject) is not None}
    last = state.last_sequences(conn, group, keys)
    waiting = gaps.lock_waiting(conn, group, subjects) if contiguous else {}
    to_apply: list[tuple[Envelope, Raw]] = []
    filled: list[str] = []  # waiting subjects whose missing event arrived in this batch

    def classify(raw: Raw) -> None:
        try:
            envelope: Envelope | None = decode(
                raw.topic, raw.partition, raw.offset, raw.headers, raw.value
            )
        except Poison as error:
            envelope, poison = None, error
        subject = envelope.subject if envelope else raw.subject
        if envelope is not None and envelope.sequence <= last.get(envelope.sequence_key, 0):
            result.duplicates += 1
        elif subject is not None and subject in parked:
            state.hold(conn, group, subject, raw)
            result.held += 1
        elif envelope is None:
            _dead_letter(conn, group, raw, poison, 1, parked, result)
        elif _waits(envelope, waiting, last, contiguous):
            if envelope.subject not in waiting:
                expected = last.get(envelope.sequence_key, 0) + 1
                wait = gaps.Waiting(envelope.subject, envelope.sequence_key, expected)
                gaps.start_waiting(conn, group, wait, raw)
                waiting[envelope.subject] = wait
            gaps.hold(conn, group, envelope.subject, raw)
            result.held += 1
        else:
            if envelope.subject in waiting:  # the missing event: what waited follows it
                filled.append(envelope.subject)
                del waiting[envelope.subject]
            to_apply.append((envelope, raw))
            last[envelope.sequence_key] = envelope.sequence

    for raw in fresh:
        classify(raw)
    while filled:
        held = gaps.take_held(conn, group, filled.pop(0))
        unread = {sequence_key(r.topic, s) for r in held if (s := r.subject) is not None}
        last |= state.last_sequences(conn, group, unread - last.keys())
        for raw in held:
            classify(raw)

    applied = _apply(conn, projection, to_apply, parked, result, max_attempts, backoff)
    sequences: dict[str, int] = {}
    for envelope in applied:
        key = envelope.sequence_key
        sequences[key] = max(sequences.get(key, 0), envelope.sequence)
    state.save_sequences(conn, group, sequences)
    state.save_offsets(conn, group, result.next_offsets)
    result.applied = len(applied)
    return result


def _waits(
    envelope: Envelope,
    waiting: dict[str, gaps.Waiting],
    last: dict[str, int],
    contiguous: Collection[str],
) -> bool:
    """Whether `envelope` must wait: its subject waits for another event, or it skips one."""
    wait = waiting.get(envelope.subject)
    if wait is not None:
        is_missing_one = (
            envelope.sequence_key == wait.sequence_key
            and envelope.sequence == last.get(wait.sequence_key, 0) + 1
        )
        return not is_missing_one
    return envelope.topic in contiguous and envelope.sequence > (
        last.get(envelope.sequence_key, 0) + 1
    )


def _apply(
    conn: Conn,
    projection: Projection,
    pairs: list[tuple[Envelope, Raw]],
    parked: set[str],
    result: BatchResult,
    max_attempts: int,
    backoff: Callable[[int], None],
) -> list[Envelope]:
    """Apply the batch at once; when that fails, one event at a time to find the culprit."""
    if not pairs:
        return []
    events = [envelope for envelope, _ in pairs]
    try:
        with conn.transaction():  # a savepoint: a failure undoes only the projection's writes
            projection.apply(conn, events)
        return events
    except Exception as error:
        if conn.broken:
            raise  # the database went away: nothing of the batch is stored, read it again
        log.info(
            "consumer.batch.failed",
            group=projection.name,
            count=len(events),
            error=_describe(error),
            action="applying one event at a time",
        )
    applied: list[Envelope] = []
    for envelope, raw in pairs:
        if envelope.subject in parked:  # an earlier event of its subject was dead-lettered
            state.hold(conn, projection.name, envelope.subject, raw)
            result.held += 1
            continue
        attempt = 0
        while True:
            attempt += 1
            try:
                with conn.transaction():
                    projection.apply(conn, [envelope])
            except Exception as error:
                if conn.broken:
                    raise
                if isinstance(error, Poison) or attempt >= max_attempts:
                    _dead_letter(conn, projection.name, raw, error, attempt, parked, result)
                    break
                log.info(
                    "consumer.event.retrying",
                    group=projection.name,
                    subject=envelope.subject,
                    ce_id=envelope.id,
                    trace_id=envelope.trace_id,
                    attempt=attempt,
                    error=_describe(error),
                )
                backoff(attempt)
            else:
                applied.append(envelope)
                break
    return applied


def _dead_letter(
    conn: Conn,
    group: str,
    raw: Raw,
    error: BaseException,
    attempts: int,
    parked: set[str],
    result: BatchResult,
) -> None:
    dead = state.insert_dead_letter(conn, group, raw, _describe(error), attempts)
    result.dead_letters.append(dead)
    if dead.subject is not None:
        parked.add(dead.subject)
    log.warning(
        "consumer.dead_lettered",
        group=group,
        subject=dead.subject,
        ce_id=dead.ce_id,
        trace_id=raw.trace_id,
        error=dead.error,
        attempts=attempts,
        dead_letter_id=dead.id,
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
    )
    if dead.subject is not None:
        log.warning("consumer.parked", group=group, subject=dead.subject, dead_letter_id=dead.id)


def _describe(error: BaseException) -> str:
    """`Type: message`, one line, short enough for a header and a log line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:1000] if text else type(error).__name__
