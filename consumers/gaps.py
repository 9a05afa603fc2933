"""Holding a subject whose events skip a sequence number (migration 0012).

On a topic whose sequences are contiguous per subject, an event numbered past the next
expected one means an event is missing: a consumer that applied it would build state
on a hole that nothing reveals later. So the subject waits: its events are kept here,
the missing one is applied when it arrives and the waiting ones after it in order; if it
does not arrive in time, the subject is parked with a dead letter whose error begins
`sequence-gap`, for an operator (`casebook dlq`). Every function runs inside the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import structlog

from consumers import state
from consumers.records import Raw, raw_from_row
from consumers.state import Conn, DeadLetter

log = structlog.get_logger("casebook.consumers")

GAP_REASON = "sequence-gap"


@dataclass(frozen=True)
class Waiting:
    """A subject held at a gap: which sequence it waits for, on which topic."""

    subject: str
    sequence_key: str
    expected: int


def lock_waiting(conn: Conn, group: str, subjects: Collection[str]) -> dict[str, Waiting]:
    """Which of `subjects` wait at a gap, their rows locked until commit."""
    if not subjects:
        return {}
    rows = conn.execute(
        "SELECT subject, sequence_key, expected FROM casebook_consumer_waiting"
        " WHERE consumer_group = %s AND subject = ANY(%s) ORDER BY subject FOR UPDATE",
        (group, sorted(subjects)),
    ).fetchall()
    return {subject: Waiting(subject, key, expected) for subject, key, expected in rows}


def start_waiting(conn: Conn, group: str, waiting: Waiting, raw: Raw) -> None:
    """Hold `waiting.subject` from now on, because `raw` skipped `waiting.expected`."""
    conn.execute(
        "INSERT INTO casebook_consumer_waiting (consumer_group, subject, sequence_key, expected)"
        " VALUES (%s, %s, %s, %s)",
        (group, waiting.subject, waiting.sequence_key, waiting.expected),
    )
    log.warning(
        "consumer.sequence.gap",
        group=group,
        subject=waiting.subject,
        topic=raw.topic,
        expected=waiting.expected,
        received=raw.sequence,
        trace_id=raw.trace_id,
        action="holding the subject until the missing event arrives",
    )


def hold(conn: Conn, group: str, subject: str, raw: Raw) -> None:
    """Keep a record of a waiting subject."""
    state.keep_record(conn, "casebook_consumer_waiting_events", group, subject, raw)


def take_held(conn: Conn, group: str, subject: str) -> list[Raw]:
    """Every held record of `subject` in sequence order, removed with the wait itself."""
    rows = conn.execute(
        'SELECT topic, partition, "offset", key, headers, value'
        " FROM casebook_consumer_waiting_events WHERE consumer_group = %s AND subject = %s"
        " ORDER BY sequence, id",
        (group, subject),
    ).fetchall()
    conn.execute(
        "DELETE FROM casebook_consumer_waiting WHERE consumer_group = %s AND subject = %s",
        (group, subject),
    )
    return [raw_from_row(*row) for row in rows]


def park_expired(conn: Conn, group: str, timeout_s: float) -> list[DeadLetter]:
    """Park every subject that has waited longer than `timeout_s` for its missing event.

    The dead letter is the first held record, its error names the gap; the other held
    records wait behind it as a parked subject's events do.
    """
    expired = conn.execute(
        "SELECT subject, sequence_key, expected FROM casebook_consumer_waiting"
        " WHERE consumer_group = %s AND since < now() - make_interval(secs => %s)"
        " ORDER BY subject FOR UPDATE SKIP LOCKED",
        (group, timeout_s),
    ).fetchall()
    dead_letters = []
    for subject, key, expected in expired:
        held = take_held(conn, group, subject)
        if not held:
            continue
        first, *rest = held
        error = (
            f"{GAP_REASON}: {key} waited {timeout_s:g} s for sequence {expected}; "
            f"the next that arrived is {first.sequence}"
        )
        dead = state.insert_dead_letter(conn, group, first, error, attempts=0)
        for raw in rest:
            state.hold(conn, group, subject, raw)
        dead_letters.append(dead)
        log.warning(
            "consumer.parked",
            group=group,
            subject=subject,
            reason=GAP_REASON,
            expected=expected,
            dead_letter_id=dead.id,
            held=len(rest),
        )
    return dead_letters


def waiting_count(conn: Conn, group: str) -> int:
    """How many subjects of the group wait at a gap."""
    row = conn.execute(
        "SELECT count(*) FROM casebook_consumer_waiting WHERE consumer_group = %s", (group,)
    ).fetchone()
    return int(row[0]) if row else 0
