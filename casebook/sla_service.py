"""The SLA tracker's process: consumer, timer and outbox publisher, started and stopped together.

`casebook consume sla` runs it alone; `casebook run` runs it beside the API. Each part
is a thread with its own connections; one stop event ends them all, the consumer first
finishing the batch in hand (`casebook.background`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from casebook.background import backoff, run_parts
from casebook.database import Database
from casebook.policy_source import load_policy
from casebook.settings import Settings
from casebook.supervision import Part
from consumers.runtime import ConsumerRuntime
from domain.policy import Policy, PolicyError
from projections.sla.projection import SlaProjection
from projections.sla.targets import TargetBook
from projections.sla.timer import SlaTimer, utc_now
from relay.outbox import OutboxPublisher, OutboxTable

SLA_OUTBOX = OutboxTable("casebook_sla_outbox", "casebook_sla_outbox_offsets", "sla-events.v1")


def target_book(settings: Settings) -> TargetBook:
    """The policy in force and every archived version, so replays use the one recorded."""
    policies = [load_policy(settings.policy_file)]
    archive: Path | None = settings.policy_archive_dir
    if archive is not None:
        if not archive.is_dir():
            raise PolicyError(f"{archive}: policy archive is not a directory")
        policies.extend(load_policy(path) for path in sorted(archive.glob("*.toml")))
    return TargetBook(_one_per_version(policies))


def _one_per_version(policies: list[Policy]) -> list[Policy]:
    seen: dict[str, Policy] = {}
    for policy in policies:
        if policy.version in seen and seen[policy.version] != policy:
            raise PolicyError(f"two different policies claim version {policy.version!r}")
        seen[policy.version] = policy
    return list(seen.values())


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
