"""The runtime's own tables (migration 0006): offsets, sequences, parked subjects,
dead letters and status. Every function runs inside the caller's transaction.

It stays one module because offsets, sequences, parked subjects and member status are
all read and written inside one batch's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from consumers.records import Raw, headers_from_json, headers_to_json

Conn = psycopg.Connection[Any]
Partition = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record and what became of it."""

    id: int
    group: str
    subject: str | None
    ce_id: str | None
    sequence: int | None
    raw: Raw
    error: str
    attempts: int
    dead_at: datetime
    resolution: str | None = None
    resolved_at: datetime | None = None
    parked: bool = False  # its subject waits for it
    waiting: int = 0  # later records of its subject held back


def stored_offsets(conn: Conn, group: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
    """The next offset to read per partition, for those that have one."""
    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM casebook_consumer_offsets"
        " WHERE consumer_group = %s AND (topic, partition) IN"
        " (SELECT * FROM unnest(%s::text[], %s::int[])) AND next_offset >= 0",
        (group, [t for t, _ in wanted], [p for _, p in wanted]),
    ).fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows}


def lock_offsets(conn: Conn, group: str, partitions: Iterable[Partition]) -> dict[Partition, int]:
    """`stored_offsets`, locking each partition's row until commit.

    Two members that briefly both hold a partition (one of them past its session)
    queue here; the second then sees what the first applied and skips it.
    """
    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    topics, numbers = [t for t, _ in wanted], [p for _, p in wanted]
    conn.execute(
        "INSERT INTO casebook_consumer_offsets (consumer_group, topic, partition, next_offset)"
        " SELECT %s, t, p, -1 FROM unnest(%s::text[], %s::int[]) AS u(t, p)"
        " ON CONFLICT DO NOTHING",
        (group, topics, numbers),
    )
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM casebook_consumer_offsets"
        " WHERE consumer_group = %s AND (topic, partition) IN"
        " (SELECT * FROM unnest(%s::text[], %s::int[]))"
        " ORDER BY topic, partition FOR UPDATE",
        (group, topics, numbers),
    ).fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows if offset >= 0}


def save_offsets(conn: Conn, group: str, offsets: Mapping[Partition, int]) -> None:
    """Record the next offset to read per partition (never moving one backwards)."""
    conn.cursor().executemany(
        "INSERT INTO casebook_consumer_offsets (consumer_group, topic, partition, next_offset)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
        " SET next_offset = GREATEST(casebook_consumer_offsets.next_offset,"
        " EXCLUDED.next_offset), updated_at = now()",
        [(group, topic, partition, offset) for (topic, partition), offset in offsets.items()],
    )


def replace_topic_ids(conn: Conn, group: str, current: Mapping[str, str]) -> list[str]:
    """Record the topics' current ids; the topics whose id changed since the group last
    read them (their offsets belong to a log that is gone), rewound to the start."""
    if not current:
        return []
    rows = conn.execute(
        "SELECT topic, topic_id FROM casebook_consumer_topics"
        " WHERE consumer_group = %s AND topic = ANY(%s) FOR UPDATE",
        (group, sorted(current)),
    ).fetchall()
    changed = sorted(topic for topic, known in rows if current[topic] != known)
    conn.cursor().executemany(
        "INSERT INTO casebook_consumer_topics (consumer_group, topic, topic_id) VALUES (%s, %s, %s)"
        " ON CONFLICT (consumer_group, topic) DO UPDATE"
        " SET topic_id = EXCLUDED.topic_id, seen_at = now()",
        [(group, topic, topic_id) for topic, topic_id in sorted(current.items())],
    )
    if changed:
        conn.execute(
            "UPDATE casebook_consumer_offsets SET next_offset = 0, updated_at = now()"
            " WHERE consumer_group = %s AND topic = ANY(%s)",
            (group, changed),
        )
    return changed


def rewind_offsets(conn: Conn, group: str, offsets: Mapping[Partition, int]) -> None:
    """Set the next offset of partitions whose log was truncated (the one move backwards)."""
    conn.cursor().executemany(
        "UPDATE casebook_consumer_offsets SET next_offset = %s, updated_at = now()"
        " WHERE consumer_group = %s AND topic = %s AND partition = %s",
        [(offset, group, topic, partition) for (topic, partition), offset in offsets.items()],
    )


def lock_parked(conn: Conn, group: str, subjects: Collection[str]) -> set[str]:
    """Which of `subjects` are parked, holding their rows until commit.

    A replay deletes the row under an exclusive lock, so an event is either held back
    before the replay drains the subject or applied after it, never in between.
    """
    if not subjects:
        return set()
    rows = conn.execute(
        "SELECT subject FROM casebook_consumer_parked"
        " WHERE consumer_group = %s AND subject = ANY(%s) ORDER BY subject FOR SHARE",
        (group, sorted(subjects)),
    ).fetchall()
    return {subject for (subject,) in rows}


def last_sequences(conn: Conn, group: str, subjects: Collection[str]) -> dict[str, int]:
    """The last applied sequence per subject (absent: nothing applied yet)."""
    if not subjects:
        return {}
    rows = conn.execute(
        "SELECT subject, sequence FROM casebook_consumer_sequences"
        " WHERE consumer_group = %s AND subject = ANY(%s)",
        (group, list(subjects)),
    ).fetchall()
    return dict(rows)


def save_sequences(conn: Conn, group: str, sequences: Mapping[str, int]) -> None:
    """Record each subject's last applied sequence (never moving one backwards)."""
    if not sequences:
        return
    subjects = sorted(sequences)  # one statement for the batch, rows locked in one order
    conn.execute(
        "INSERT INTO casebook_consumer_sequences (consumer_group, subject, sequence)"
        " SELECT %s, s, q FROM unnest(%s::text[], %s::bigint[]) AS u(s, q)"
        " ON CONFLICT (consumer_group, subject) DO UPDATE"
        " SET sequence = GREATEST(casebook_consumer_sequences.sequence, EXCLUDED.sequence)",
        (group, subjects, [sequences[s] for s in subjects]),
    )


def insert_dead_letter(conn: Conn, group: str, raw: Raw, error: str, attempts: int) -> DeadLetter:
    """Store a dead letter and park its subject on it (when the record names one)."""
    row = conn.execute(
        "INSERT INTO casebook_consumer_dead_letters (consumer_group, subject, ce_id, sequence,"
        ' topic, partition, "offset", headers, key, value, error, attempts)'
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, dead_at",
        (
            group,
            raw.subject,
            raw.ce_id,
            raw.sequence,
            raw.topic,
            raw.partition,
            raw.offset,
            Jsonb(headers_to_json(raw.headers)),
            raw.key,
            raw.value,
            error,
            attempts,
        ),
    ).fetchone()
    assert row is not None
    dead_letter_id, dead_at = row
    if raw.subject is not None:
        conn.execute(
            "INSERT INTO casebook_consumer_parked (consumer_group, subject, dead_letter_id)"
            " VALUES (%s, %s, %s) ON CONFLICT (consumer_group, subject)"
            " DO UPDATE SET dead_letter_id = EXCLUDED.dead_letter_id, parked_at = now()",
            (group, raw.subject, dead_letter_id),
        )
    return DeadLetter(
        id=dead_letter_id, group=group, subject=raw.subject, ce_id=raw.ce_id,
        sequence=raw.sequence, raw=raw, error=error, attempts=attempts, dead_at=dead_at,
        parked=raw.subject is not None,
    )  # fmt: skip


def hold(conn: Conn, group: str, subject: str, raw: Raw) -> None:
    """Keep a record of a parked subject until the subject is replayed."""
    keep_record(conn, "casebook_consumer_parked_events", group, subject, raw)


def keep_record(conn: Conn, table: str, group: str, subject: str, raw: Raw) -> None:
    """Store `raw` as received in `table` (parked or waiting events: the same columns)."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (consumer_group, subject, ce_id, sequence, topic, partition,"
            ' "offset", headers, key, value) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)'
        ).format(sql.Identifier(table)),
        (
            group, subject, raw.ce_id, raw.sequence, raw.topic, raw.partition, raw.offset,
            Jsonb(headers_to_json(raw.headers)), raw.key, raw.value,
        ),
    )  # fmt: skip


def parked_count(conn: Conn, group: str) -> int:
    """How many subjects of the group are parked."""
    row = conn.execute(
        "SELECT count(*) FROM casebook_consumer_parked WHERE consumer_group = %s", (group,)
    ).fetchone()
    return int(row[0]) if row else 0


_DEAD_LETTER_COLUMNS = (
    'd.id, d.consumer_group, d.subject, d.ce_id, d.sequence, d.topic, d.partition, d."offset",'
    " d.headers, d.key, d.value, d.error, d.attempts, d.dead_at, d.resolution, d.resolved_at,"
    " p.subject IS NOT NULL,"
    " (SELECT count(*) FROM casebook_consumer_parked_events e"
    "  WHERE p.subject IS NOT NULL AND e.consumer_group = p.consumer_group"
    "  AND e.subject = p.subject)"
)
_DEAD_LETTER_FROM = (
    " FROM casebook_consumer_dead_letters d LEFT JOIN casebook_consumer_parked p"
    " ON p.dead_letter_id = d.id"
)


def dead_letters(
    conn: Conn, group: str | None = None, *, include_resolved: bool = False
) -> list[DeadLetter]:
    """Dead letters, oldest first: open ones only unless `include_resolved`."""
    rows = conn.execute(
        f"SELECT {_DEAD_LETTER_COLUMNS}{_DEAD_LETTER_FROM}"
        " WHERE (%(group)s::text IS NULL OR d.consumer_group = %(group)s)"
        " AND (%(all)s OR d.resolution IS NULL) ORDER BY d.id",
        {"group": group, "all": include_resolved},
    ).fetchall()
    return [_dead_letter(row) for row in rows]


def dead_letter(conn: Conn, dead_letter_id: int) -> DeadLetter | None:
    """One dead letter by id."""
    row = conn.execute(
        f"SELECT {_DEAD_LETTER_COLUMNS}{_DEAD_LETTER_FROM} WHERE d.id = %s", (dead_letter_id,)
    ).fetchone()
    return _dead_letter(row) if row else None


def _dead_letter(row: Any) -> DeadLetter:
    (id_, group, subject, ce_id, sequence, topic, partition, offset, headers, key, value,
     error, attempts, dead_at, resolution, resolved_at, parked, waiting) = row  # fmt: skip
    raw = Raw(topic, partition, offset, _bytes(key), headers_from_json(headers), _bytes(value))
    return DeadLetter(
        id=id_, group=group, subject=subject, ce_id=ce_id, sequence=sequence, raw=raw,
        error=error, attempts=attempts, dead_at=dead_at, resolution=resolution,
        resolved_at=resolved_at, parked=parked, waiting=int(waiting),
    )  # fmt: skip


def _bytes(value: bytes | memoryview | None) -> bytes | None:
    return bytes(value) if value is not None else None


@dataclass(frozen=True)
class MemberStatus:
    """What one running group member last reported."""

    group: str
    member: str
    partitions: str
    lag: int | None
    events_per_second: float
    parked: int
    applied: int
    dead_lettered: int
    started_at: datetime
    updated_at: datetime


def save_status(conn: Conn, status: MemberStatus) -> None:
    """Upsert a member's status row (updated_at is the database's now())."""
    conn.execute(
        "INSERT INTO casebook_consumer_status (consumer_group, member, partitions, lag,"
        " events_per_second, parked, applied, dead_lettered, started_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (consumer_group, member) DO UPDATE SET partitions = EXCLUDED.partitions,"
        " lag = EXCLUDED.lag, events_per_second = EXCLUDED.events_per_second,"
        " parked = EXCLUDED.parked, applied = EXCLUDED.applied,"
        " dead_lettered = EXCLUDED.dead_lettered, updated_at = now()",
        (
            status.group, status.member, status.partitions, status.lag,
            status.events_per_second, status.parked, status.applied, status.dead_lettered,
            status.started_at,
        ),
    )  # fmt: skip


def delete_status(conn: Conn, group: str, member: str) -> None:
    """Remove a member's row when it leaves the group cleanly."""
    conn.execute(
        "DELETE FROM casebook_consumer_status WHERE consumer_group = %s AND member = %s",
        (group, member),
    )


def statuses(conn: Conn, group: str | None = None) -> list[MemberStatus]:
    """Every member's last report, by group and member."""
    rows = conn.execute(
        "SELECT consumer_group, member, partitions, lag, events_per_second, parked, applied,"
        " dead_lettered, started_at, updated_at FROM casebook_consumer_status"
        " WHERE %(group)s::text IS NULL OR consumer_group = %(group)s"
        " ORDER BY consumer_group, member",
        {"group": group},
    ).fetchall()
    return [MemberStatus(*row) for row in rows]
