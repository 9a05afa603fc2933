"""What the consumer runtime needs from a projection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import psycopg

from consumers.envelope import Envelope


class Projection(Protocol):
    """A read model fed by one consumer group.

    `name` is the consumer group id and the key of everything the runtime stores for it
    (offsets, last applied sequence per subject, parked subjects, dead letters).
    `topics` are topic names under the configured prefix, e.g. `case-events.v1`.
    """

    # Read-only, so a plain attribute of a narrower type (`tuple[str]`) satisfies them.
    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> tuple[str, ...]: ...

    @property
    def contiguous_topics(self) -> tuple[str, ...]:
        """Those of `topics` on which each subject's `sequence` goes up by one: there the
        runtime holds a subject whose next event skips a number (consumers/gaps.py)."""
        ...

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[Envelope]) -> None:
        """Apply `events` inside the caller's open transaction, in the order given.

        The runtime has already dropped duplicates and events of parked subjects, and
        keeps each subject's events in sequence order. Raise `Poison` for an event that
        can never be applied (the runtime dead-letters it without retrying); any other
        exception is retried, then dead-lettered.
        """
        ...
