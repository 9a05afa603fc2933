"""The base of casebook's aggregates: every event carries the caller's time."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate


class ClockedAggregate(Aggregate):
    """An aggregate whose events are stamped with the caller's clock (`at`), never the
    wall clock: time always comes from the command, so replays and tests control it."""

    def trigger_event(self, event_class: type[CanMutateAggregate[UUID]], **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", kwargs.get("at"))
        super().trigger_event(event_class, **kwargs)
