"""What can happen to a service incident: explicit, immutable, past-tense events.

Versioning: every event is at `class_version = 1`. To change one, never rename it:
bump its `class_version` and add `upcast_v1_v2(state)` on the class.

Attributes stay JSON-friendly (str, datetime, tuples of str, Actor): categories are
`Category` values typed `str`, services free-text names as the dashboard shows them.
Every event says who did it (`by`) and when it happened on the caller's clock (`at`).
"""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from domain.values import Actor


class Declared(Aggregate.Created):
    """A supervisor declared an incident: what it affects and what customers are told."""

    class_version = 1
    services: tuple[str, ...]
    categories: tuple[str, ...]  # Category values
    summary: str  # customer-visible
    started_at: datetime
    by: Actor
    at: datetime


class Updated(Aggregate.Event):
    """A supervisor changed the incident's summary and/or scope (the full new values)."""

    class_version = 1
    services: tuple[str, ...]
    categories: tuple[str, ...]
    summary: str
    by: Actor
    at: datetime


class Closed(Aggregate.Event):
    """A supervisor closed the incident: it ended at `ended_at`."""

    class_version = 1
    ended_at: datetime
    by: Actor
    at: datetime
