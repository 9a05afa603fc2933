"""Operators' way out of a dead letter: re-apply it (or skip it), then what waited behind it.

Safe while the live consumer runs: the parked row is locked for the whole transaction
and the consumer locks it too before holding an event back, so every event of the
subject lands either in the parked table before the replay drains it, or is applied
by the consumer after the replay committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg
import structlog

from casebook.database import Database
from consumers import state
from consumers.envelope import Envelope, decode, sequence_key
from consumers.projection import Projection
from consumers.records import Raw, raw_from_row
from consumers.state import Conn, DeadLetter

log = structlog.get_logger("casebook.consumers")


class ReplayError(RuntimeError):
    """A replay that did not happen; the message says why in one line."""


class NotParked(ReplayError):
    """The subject is not parked in that group."""


class ReplayFailed(ReplayError):
    """The dead-lettered event failed again; nothing changed and the subject stays parked."""


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay did. `parked_again` is set when a waiting event failed in turn."""

    group: str
    subject: str
    dead_letter_id: int
    resolution: Literal["replayed", "skipped"]
    applied: int  # the dead letter (unless skipped or a duplicate) and the waiting events
    duplicates: int
    parked_again: DeadLetter | None = None


def parked_groups(db: Database, subject: str) -> list[str]:
    """The groups in which `subject` is parked."""
    with psycopg.connect(db.url) as conn:
        rows = conn.execute(
            "SELECT consumer_group FROM casebook_consumer_parked WHERE subject = %s"
            " ORDER BY consumer_group",
            (subject,),
        ).fetchall()
    return [group for (group,) in rows]


def replay(
    db: Database, projection: Projection, subject: str, *, skip: bool = False
) -> ReplayOutcome:
    """Un-park `subject` in the projection's group in one transaction.

    Re-applies the dead letter (or records it as skipped), then the waiting events in
    sequence order, advances the subject's sequence and deletes the parked rows. When
    the dead letter fails again, everything is rolled back (`ReplayFailed`). When a
    waiting event fails, what came before it is kept and the subject is parked on it.
    """
    group = projection.name
    with psycopg.connect(db.url) as conn, conn.transaction():
        row = conn.execute(
            "SELECT dead_letter_id FROM casebook_consumer_parked"
            " WHERE consumer_group = %s AND subject = %s FOR UPDATE",
            (group, subject),
        ).fetchone()
        if row is None:
            raise NotParked(f"subject {subject!r} is not parked in group {group!r}")
        dead = state.dead_letter(conn, row[0])
        assert dead is not None
        last = _last_sequences(conn, group, subject)
        applied = duplicates = 0
        if not skip:
            try:
                envelope = _decode(dead.raw)
                if envelope.sequence <= last.get(envelope.sequence_key, 0):
                    duplicates += 1
                else:
                    projection.apply(conn, [envelope])
                    applied, last[envelope.sequence_key] = 1, envelope.sequence
            except Exception as error:
                raise ReplayFailed(
                    f"dead letter {dead.id} ({dead.ce_id or 'no ce_id'}) of {subject!r} failed "
                    f"again: {type(error).__name__}: {' '.join(str(error).split())}"
                ) from None
        elif dead.sequence is not None:
            # A republished copy must not slip in later.
            key = sequence_key(dead.raw.topic, subject)
            last[key] = max(last.get(key, 0), dead.sequence)
        resolution: Literal["replayed", "skipped"] = "skipped" if skip else "replayed"
        outcome = _drain(conn, projection, subject, last, dead, resolution)
        outcome = ReplayOutcome(
            group=group,
            subject=subject,
            dead_letter_id=dead.id,
            resolution=resolution,
            applied=applied + outcome.applied,
            duplicates=duplicates + outcome.duplicates,
            parked_again=outcome.parked_again,
        )
    log.info(
        "consumer.unparked" if outcome.parked_again is None else "consumer.parked",
        group=group,
        subject=subject,
        dead_letter_id=dead.id,
        resolution=resolution,
        applied=outcome.applied,
        parked_on=outcome.parked_again.id if outcome.parked_again else None,
    )
    return outcome


def _drain(
    conn: Conn,
    projection: Projection,
    subject: str,
    last: dict[str, int],
    dead: DeadLetter,
    resolution: Literal["replayed", "skipped"],
) -> ReplayOutcome:
    """Apply the waiting events in order; stop and park again at one that fails."""
    group = projection.name
    conn.execute(
        "UPDATE casebook_consumer_dead_letters SET resolution = %s, resolved_at = now()"
        " WHERE id = %s",
        (resolution, dead.id),
    )
    waiting = conn.execute(
        'SELECT id, topic, partition, "offset", key, headers, value'
        " FROM casebook_consumer_parked_events WHERE consumer_group = %s AND subject = %s"
        " ORDER BY sequence NULLS LAST, id",
        (group, subject),
    ).fetchall()
    applied = duplicates = 0
    parked_again: DeadLetter | None = None
    done: list[int] = []
    for row in waiting:
        raw = _raw(row)
        try:
            envelope = _decode(raw)
            if envelope.sequence <= last.get(envelope.sequence_key, 0):
                duplicates += 1
            else:
                with conn.transaction():
                    projection.apply(conn, [envelope])
                applied, last[envelope.sequence_key] = applied + 1, envelope.sequence
        except Exception as error:
            message = f"{type(error).__name__}: {' '.join(str(error).split())}"[:1000]
            parked_again = state.insert_dead_letter(conn, group, raw, message, 1)
            done.append(row[0])
            break
        done.append(row[0])
    conn.execute("DELETE FROM casebook_consumer_parked_events WHERE id = ANY(%s)", (done,))
    if parked_again is None:
        conn.execute(
            "DELETE FROM casebook_consumer_parked WHERE consumer_group = %s AND subject = %s",
            (group, subject),
        )
    if last:
        state.save_sequences(conn, group, last)
    return ReplayOutcome(group, subject, dead.id, resolution, applied, duplicates, parked_again)


def _last_sequences(conn: Conn, group: str, subject: str) -> dict[str, int]:
    """The subject's last applied sequence on every topic the group read it from."""
    rows = conn.execute(
        "SELECT subject, sequence FROM casebook_consumer_sequences"
        " WHERE consumer_group = %s AND substr(subject, position('|' in subject) + 1) = %s",
        (group, subject),
    ).fetchall()
    return {key: sequence for key, sequence in rows}


def _raw(row: Any) -> Raw:
    _, topic, partition, offset, key, headers, value = row
    return raw_from_row(topic, partition, offset, key, headers, value)


def _decode(raw: Raw) -> Envelope:
    return decode(raw.topic, raw.partition, raw.offset, raw.headers, raw.value)
