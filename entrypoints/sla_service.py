"""The SLA tracker's process: consumer, timer and outbox publisher, started and stopped together.

`casebook consume sla` runs it alone; `casebook run` runs it beside the API. Each part
is a thread with its own connections; one stop event ends them all, the consumer first
finishing the batch in hand (`entrypoints.background`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from casebook.database import Database
from casebook.settings import Settings
from casebook.supervision import Part
from consumers.runtime import ConsumerRuntime
from entrypoints.background import backoff, run_parts
from projections.sla.policies import target_book
from projections.sla.projection import SlaProjection
from projections.sla.timer import SlaTimer, utc_now
from relay.outbox import OutboxPublisher, OutboxTable

SLA_OUTBOX = OutboxTable("casebook_sla_outbox", "casebook_sla_outbox_offsets", "sla-events.v1")


class SlaService:
    """The three parts of the SLA tracker on their threads."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if settings.kafka_bootstrap_servers is None:
            raise ValueError("the SLA tracker needs KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.projection = SlaProjection(target_book(settings))
        self.consumer = ConsumerRuntime(self.projection, db, settings)
        self.timer = SlaTimer(db.url, clock=clock)
        self.publisher = OutboxPublisher(
            db, settings, SLA_OUTBOX, bootstrap_servers=settings.kafka_bootstrap_servers
        )

    @property
    def parts(self) -> dict[str, Part]:
        return {
            "sla-consumer": self.consumer.run,
            "sla-timer": self.timer.run,
            "sla-outbox": self.publisher.run,
        }

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set, then stop every part and wait for them."""
        run_parts("sla", self.parts, stop, backoff(self.settings))


def sla_beside_api(db: Database, settings: Settings, bootstrap: str) -> SlaService:
    """The SLA tracker to run beside the API (what `casebook run` does)."""
    local = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    return SlaService(db, local)
