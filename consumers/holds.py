"""Why a consumer group has not applied an event: dead-lettered, parked or held at a gap.

Completeness checks find stored events a projection lacks; for the few they report, this
says whether the runtime knows why (an operator then acts with `casebook dlq`) or not (the
record never reached the group: lost with a broker's topics, or not consumed yet).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from consumers.state import Conn


@dataclass(frozen=True)
class Holds:
    """What one group holds back or gave up on, for a few subjects and event ids."""

    dead: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # ce_id: id, resolution
    parked: dict[str, int] = field(default_factory=dict)  # subject: dead letter id
    waiting: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # subject: seq, since

    def why(self, subject: str, ce_id: str | None = None) -> str | None:
        """The reason the runtime records, or None when it knows of none."""
        if ce_id is not None and ce_id in self.dead:
            dead_letter, resolution = self.dead[ce_id]
            if resolution == "skipped":
                return f"skipped by an operator (dead letter {dead_letter})"
            return f"dead-lettered (dead letter {dead_letter}{', replayed' if resolution else ''})"
        if subject in self.parked:
            return f"its subject is parked behind dead letter {self.parked[subject]}"
        if subject in self.waiting:
            expected, since = self.waiting[subject]
            return f"its subject waits for sequence {expected} since {since.isoformat()}"
        return None


def holds(conn: Conn, group: str, subjects: Collection[str], ce_ids: Collection[str] = ()) -> Holds:
    """The dead letters of `ce_ids` and the parked or waiting subjects among `subjects`."""
    dead = conn.execute(
        "SELECT ce_id, id, resolution FROM casebook_consumer_dead_letters"
        " WHERE consumer_group = %s AND ce_id = ANY(%s) ORDER BY id",
        (group, list(ce_ids)),
    ).fetchall()
    parked = conn.execute(
        "SELECT subject, dead_letter_id FROM casebook_consumer_parked"
        " WHERE consumer_group = %s AND subject = ANY(%s)",
        (group, list(subjects)),
    ).fetchall()
    waiting = conn.execute(
        "SELECT subject, expected, since FROM casebook_consumer_waiting"
        " WHERE consumer_group = %s AND subject = ANY(%s)",
        (group, list(subjects)),
    ).fetchall()
    return Holds(
        dead={ce_id: (id_, resolution) for ce_id, id_, resolution in dead},  # the latest wins
        parked=dict(parked),
        waiting={subject: (expected, since) for subject, expected, since in waiting},
    )
