"""Value types a service request exposes to readers: status, history, notes, evidence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from domain.values import Actor, Severity


class CaseStatus(StrEnum):
    """Where a case stands: waiting for its severity, being worked, or resolved."""

    AWAITING_ASSESSMENT = "awaiting_assessment"
    OPEN = "open"
    RESOLVED = "resolved"


class NoteVisibility(StrEnum):
    """Who sees a note: support only, or the customer too."""

    INTERNAL = "internal"
    CUSTOMER = "customer"


# The reason the severity history gives its first entry (not typed by anyone).
INITIAL_ASSESSMENT = "initial assessment"


class SeverityChange(NamedTuple):
    """One entry of the severity history: when, to what, and why."""

    at: datetime
    severity: Severity
    reason: str


class UnresponsiveRecord(NamedTuple):
    """Evidence that the customer left a request unanswered (§4).

    `version` is the aggregate version of its `CustomerUnresponsive` event; it stops
    `standing` once a downgrade used it or the customer's admin added a note.
    """

    version: int
    requested: str
    asked_at: datetime
    recorded_at: datetime
    standing: bool


class Note(NamedTuple):
    """A note on the case."""

    at: datetime
    by: Actor
    visibility: NoteVisibility
    text: str


class Satisfaction(NamedTuple):
    """The customer's survey answer."""

    score: int
    comment: str | None
    at: datetime
