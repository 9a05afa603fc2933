"""kafka-python's rebalance callbacks, handed to whoever runs the consumer."""

from __future__ import annotations

from collections.abc import Callable

from kafka import ConsumerRebalanceListener, TopicPartition

Handler = Callable[[list[TopicPartition]], None]


class RebalanceHandler(ConsumerRebalanceListener):  # type: ignore[misc]
    """Passes the partitions revoked and assigned (inside poll) on to two callables."""

    def __init__(self, on_revoked: Handler, on_assigned: Handler) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._on_revoked(list(revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._on_assigned(list(assigned))
