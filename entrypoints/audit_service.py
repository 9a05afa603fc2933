"""The audit trail's process: its consumer and the parts that sign and publish checkpoints.

`casebook consume audit` runs it alone; `casebook run` runs it beside the API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casebook.database import Database
from casebook.settings import Settings
from consumers.runtime import ConsumerRuntime
from entrypoints.background import backoff, run_parts
from projections.audit.checkpointer import OUTBOX, Checkpointer
from projections.audit.projection import AuditProjection
from projections.audit.signing import SigningKeyUnavailable, load_signing_key
from relay.outbox import OutboxPublisher, OutboxTable

log = structlog.get_logger("casebook.audit")
CHECKPOINT_OUTBOX = OutboxTable(OUTBOX, f"{OUTBOX}_offsets", "audit-checkpoints.v1")


class AuditService:
    """The audit consumer (group "audit") and its companions on their threads."""

    def __init__(
        self, db: Database, settings: Settings, *, signing_key: Ed25519PrivateKey | None = None
    ) -> None:
        """`signing_key` None: the one settings name (see `projections.audit.signing`); if there is
        none, the checkpointer refuses to start, says why, and the consumer runs alone.
        """
        if settings.kafka_bootstrap_servers is None:
            raise ValueError("the audit trail needs KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.projection = AuditProjection()
        self.consumer = ConsumerRuntime(self.projection, db, settings)
        self.parts: dict[str, Callable[[threading.Event], None]] = {
            "audit-consumer": self.consumer.run,
        }
        self.publisher = OutboxPublisher(
            db, settings, CHECKPOINT_OUTBOX, bootstrap_servers=settings.kafka_bootstrap_servers
        )
        self.parts["audit-checkpoint-outbox"] = self.publisher.run
        self.checkpointer: Checkpointer | None = None
        try:
            key = signing_key or load_signing_key(settings)
        except SigningKeyUnavailable as error:
            log.error("audit.checkpointer.refused", reason=str(error))
            return
        self.checkpointer = Checkpointer(db.url, key, seconds=settings.audit_checkpoint_seconds)
        self.parts["audit-checkpointer"] = self.checkpointer.run

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set, then stop every part and wait for them."""
        run_parts("audit", self.parts, stop, backoff(self.settings))


def audit_beside_api(db: Database, settings: Settings, bootstrap: str) -> AuditService:
    """The audit trail to run beside the API (what `casebook run` does)."""
    local = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    return AuditService(db, local)
