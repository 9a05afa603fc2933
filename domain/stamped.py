"""The base of aggregates whose events happen at the caller's time."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate


class StampedAggregate(Aggregate):
    """An aggregate whose every event is stamped with the caller's clock (`at`)."""

    def trigger_event(self, event_class: type[CanMutateAggregate[UUID]], **kwargs: Any) -> None:
        """Stamp every event with the caller's clock (`at`), never the wall clock."""
        kwargs.setdefault("timestamp", kwargs.get("at"))
        super().trigger_event(event_class, **kwargs)
