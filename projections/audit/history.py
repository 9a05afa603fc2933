"""A case as it was: its state at any instant or version, and what changed in between.

Rebuilt from the event store, never from a projection: the case's stored events are
read once and folded up to the version asked for. An instant selects the last version
whose event happened at or before it (every event records when it happened, `at`;
the write side never lets a case's events go back in time).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate

from casebook.application import Casebook
from casebook.errors import AuditQueryInvalid, CaseNotFound, CaseNotOpenYet, CaseVersionNotFound
from casebook.reads import RecordedEvent
from domain.cases import ServiceRequest


@dataclass(frozen=True)
class Point:
    """Where to look in a case's history: an instant or a version, and the names the
    caller gave them (`query.at`, `--at`, ...) so that refusals name the part at fault."""

    at: datetime | None
    version: int | None
    at_name: str
    version_name: str


@dataclass(frozen=True)
class CaseAsOf:
    """The case at one version: its state, the version and when that version happened.

    Version 0 (only in a diff) is the case before its opening: no state, no instant.
    """

    case: ServiceRequest | None
    version: int
    at: datetime | None


@dataclass(frozen=True)
class CaseChange:
    """The case at two versions and the events that led from the first to the second."""

    before: CaseAsOf
    after: CaseAsOf
    events: list[RecordedEvent]


class CaseHistory:
    """One case's stored events, loaded once, and the states they add up to."""

    def __init__(self, case_id: UUID, events: list[Any]) -> None:
        if not events or not isinstance(events[0], ServiceRequest.Opened):
            raise CaseNotFound(case_id)
        self.case_id = case_id
        self.events = events
        self.instants = [_instant(event) for event in events]

    @classmethod
    def load(cls, casebook: Casebook, case_id: UUID) -> CaseHistory:
        """Read every stored event of the case (404 `case-exists` when there are none)."""
        return cls(case_id, list(casebook.store.events.get(case_id)))

    @property
    def latest(self) -> int:
        return len(self.events)

    def as_of(self, version: int) -> CaseAsOf:
        """The case after its first `version` events."""
        if version == 0:
            return CaseAsOf(None, 0, None)
        case = project_aggregate(None, self.events[:version])
        assert isinstance(case, ServiceRequest)
        return CaseAsOf(case, version, self.instants[version - 1])

    def version_of(self, point: Point, *, before_opening: bool = False) -> int:
        """The version `point` names; with `before_opening`, 0 for an instant before it."""
        if point.at is not None and point.version is not None:
            raise AuditQueryInvalid(
                f"give {point.at_name} or {point.version_name}, not both", point.version_name
            )
        if point.version is not None:
            if point.version < (0 if before_opening else 1):
                raise AuditQueryInvalid(
                    f"{point.version_name} must be at least {0 if before_opening else 1}",
                    point.version_name,
                )
            if point.version > self.latest:
                raise CaseVersionNotFound(
                    f"{point.version_name} {point.version}: case {self.case_id} has "
                    f"{self.latest} version(s)",
                    point.version_name,
                )
            return point.version
        if point.at is None:
            raise AuditQueryInvalid(
                f"give {point.at_name} (an instant) or {point.version_name}", point.at_name
            )
        at = aware(point.at, point.at_name)
        version = bisect_right(self.instants, at)
        if version == 0 and not before_opening:
            raise CaseNotOpenYet(
                f"{point.at_name} {at.isoformat()} is before case {self.case_id} was opened "
                f"({self.instants[0].isoformat()})",
                point.at_name,
            )
        return version


def state_as_of(casebook: Casebook, case_id: UUID, point: Point) -> CaseAsOf:
    """The case as it was at an instant or version, rebuilt from its stored events."""
    history = CaseHistory.load(casebook, case_id)
    return history.as_of(history.version_of(point))


def changes_between(casebook: Casebook, case_id: UUID, start: Point, end: Point) -> CaseChange:
    """The case at `start` and at `end` (the latest version when `end` names nothing),
    and the events between them; `start` may precede the opening (version 0)."""
    history = CaseHistory.load(casebook, case_id)
    first = history.version_of(start, before_opening=True)
    if end.at is None and end.version is None:
        last = history.latest
    else:
        last = history.version_of(end, before_opening=True)
    if start.at is not None and end.at is not None:
        if aware(start.at, start.at_name) > aware(end.at, end.at_name):
            raise AuditQueryInvalid(
                f"{start.at_name} ({start.at.isoformat()}) is after {end.at_name} "
                f"({end.at.isoformat()})",
                end.at_name,
            )
    elif first > last:
        end_name = end.at_name if end.at is not None else end.version_name
        raise AuditQueryInvalid(
            f"{end_name} names version {last}, before the start (version {first})", end_name
        )
    events = [RecordedEvent.of(event) for event in history.events[first:last]]
    return CaseChange(history.as_of(first), history.as_of(last), events)


def aware(at: datetime, name: str) -> datetime:
    """`at` itself, refused when it has no UTC offset (it names no instant)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise AuditQueryInvalid(f"{name} needs a UTC offset, e.g. 2025-03-01T09:00:00Z", name)
    return at


def _instant(event: Any) -> datetime:
    at = getattr(event, "at", None)
    return at if isinstance(at, datetime) else event.timestamp
