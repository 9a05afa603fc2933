"""The SLA tracker's process: consumer, timer and outbox publisher, started and stopped together.

`casebook consume sla` runs it alone; `casebook run` runs it beside the API. Each part
is a thread with its own connections; one stop event ends them all, the consumer first
finishing the batch in hand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

import structlog

from casebook.database import Database
from casebook.policy_source import load_policy
from casebook.settings import Settings
from consumers.runtime import ConsumerRuntime
from domain.policy import Policy, PolicyError
from projections.sla.projection import SlaProjection
from projections.sla.targets import TargetBook
from projections.sla.timer import SlaTimer, utc_now
from relay.outbox import OutboxPublisher, OutboxTable

log = structlog.get_logger("casebook.sla")
SLA_OUTBOX = OutboxTable("casebook_sla_outbox", "casebook_sla_outbox_offsets", "sla-events.v1")
JOIN_SECONDS = 30.0


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
        self.projection = SlaProjection(target_book(settings))
        self.consumer = ConsumerRuntime(self.projection, db, settings)
        self.timer = SlaTimer(db.url, clock=clock)
        self.publisher = OutboxPublisher(
            db, settings, SLA_OUTBOX, bootstrap_servers=settings.kafka_bootstrap_servers
        )

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set, then stop every part and wait for them."""
        self.publisher.ensure_topic()
        parts = {
            "sla-consumer": self.consumer.run,
            "sla-timer": self.timer.run,
            "sla-outbox": self.publisher.run,
        }
        run_parts("sla", parts, stop)


def run_parts(
    service: str, parts: dict[str, Callable[[threading.Event], None]], stop: threading.Event
) -> None:
    """Run each part on its thread until `stop` is set; if one fails, stop them all."""
    failed = threading.Event()
    threads = []
    for name, target in parts.items():
        thread = threading.Thread(
            target=_guarded, args=(name, target, stop, failed), name=name, daemon=True
        )
        thread.start()
        threads.append(thread)
    log.info(f"{service}.started", parts=list(parts))
    stop.wait()
    for thread in threads:
        thread.join(timeout=JOIN_SECONDS)
    log.info(f"{service}.stopped", failed=failed.is_set())
    if failed.is_set():
        raise RuntimeError(f"a part of the {service} service failed; see the log above")


def _guarded(
    name: str,
    target: Callable[[threading.Event], None],
    stop: threading.Event,
    failed: threading.Event,
) -> None:
    # One part dying silently would leave the service half-alive: stop them all instead.
    try:
        target(stop)
    except Exception:
        log.exception("service.part.failed", part=name)
        failed.set()
        stop.set()


class Service(Protocol):
    def run(self, stop: threading.Event) -> None: ...


_S = TypeVar("_S", bound=Service)


@contextmanager
def in_background(service: _S, name: str) -> Iterator[_S]:
    """`service` running on a thread of its own until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        stop.set()
        thread.join(timeout=JOIN_SECONDS + 5)


def background_sla(
    db: Database, settings: Settings, bootstrap: str
) -> AbstractContextManager[SlaService]:
    """The SLA tracker on a thread beside the API (what `casebook run` does)."""
    local = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    return in_background(SlaService(db, local), "casebook-sla")
