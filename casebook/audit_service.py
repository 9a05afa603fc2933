"""The audit trail's process: its consumer and the parts that sign and publish checkpoints.

`casebook consume audit` runs it alone; `casebook run` runs it beside the API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from casebook.database import Database
from casebook.settings import Settings
from casebook.sla_service import JOIN_SECONDS, run_parts
from consumers.runtime import ConsumerRuntime
from projections.audit.projection import AuditProjection


class AuditService:
    """The audit consumer (group "audit") and its companions on their threads."""

    def __init__(self, db: Database, settings: Settings) -> None:
        if settings.kafka_bootstrap_servers is None:
            raise ValueError("the audit trail needs KAFKA_BOOTSTRAP_SERVERS")
        self.projection = AuditProjection()
        self.consumer = ConsumerRuntime(self.projection, db, settings)
        self.parts: dict[str, Callable[[threading.Event], None]] = {
            "audit-consumer": self.consumer.run,
        }

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set, then stop every part and wait for them."""
        run_parts("audit", self.parts, stop)


@contextmanager
def background_audit(db: Database, settings: Settings, bootstrap: str) -> Iterator[AuditService]:
    """The audit trail on a thread beside the API (what `casebook run` does)."""
    service = AuditService(db, settings.model_copy(update={"kafka_bootstrap_servers": bootstrap}))
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), name="casebook-audit", daemon=True)
    thread.start()
    try:
        yield service
    finally:
        stop.set()
        thread.join(timeout=JOIN_SECONDS + 5)
