"""What can happen to a service request: explicit, immutable, past-tense events.

Versioning: to change an event, never rename it: bump its `class_version` and add
`upcast_v<n>_v<n+1>(state)` on the class, so events stored earlier are read as the new
version (replays, as-of views and the topics all see one shape). `Opened` is at v4,
`Responded` and `Resolved` at v2.

Attributes stay JSON-friendly (str, int, bool, UUID, datetime, Actor, None), so enum
values are typed `str` here: after a round trip through the event store they come back
as plain strings, and the aggregate normalises them when it applies the event. Every
event says who did it (`by`) and when it happened on the caller's clock (`at`); the
SLA-relevant ones also record the `policy_version` in force, so a replay recomputes
the same deadlines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.cases.erasure import forget_case
from domain.sla.waiting import WaitingEstimate
from domain.values import Actor


class Opened(Aggregate.Created):
    """An admin's request was opened; it awaits a severity assessment.

    v2 added the customer's locale at opening (`customer_timezone`, `customer_country`):
    the hours and holidays of customer-calendar targets (presales, §7.3) come from the case
    itself. Requests opened before it read as None (the organisation's locale applies).

    v3 added `triage_severity`: the strictest severity the policy allowed this request at
    opening (§4, the organisation's agreement then), whose target the SLA clock runs on
    until the assessment. Requests opened before it read as None (the tracker uses B).

    v4 added the promise made at opening (§2's expected waiting time, docs/sla.md):
    `expected_response_at`, when the first response is expected, and `waiting_estimate`,
    how that was estimated. Requests opened before it, or without an estimate, read None.

    v5 added `support_line`: the id of the policy's phone line (§2) a request opened by
    phone came in on, when the agent gave it. Requests opened before it read None.
    """

    class_version = 5
    organisation_id: UUID
    requester_id: str
    category: str  # a Category value
    title: str
    description: str
    contact_phone: str
    contact_email: str
    preferred_contact: str  # a ContactKind value
    caller_phone: str | None
    verification_id: UUID | None
    partner_contact_acknowledged: bool
    customer_timezone: str | None
    customer_country: str | None
    triage_severity: str | None  # a Severity value
    expected_response_at: datetime | None
    waiting_estimate: WaitingEstimate | None
    support_line: str | None
    policy_version: str
    by: Actor
    at: datetime

    @staticmethod
    def upcast_v1_v2(state: dict[str, object]) -> None:
        state["customer_timezone"] = None
        state["customer_country"] = None

    @staticmethod
    def upcast_v2_v3(state: dict[str, object]) -> None:
        state["triage_severity"] = None

    @staticmethod
    def upcast_v3_v4(state: dict[str, object]) -> None:
        state["expected_response_at"] = None
        state["waiting_estimate"] = None

    @staticmethod
    def upcast_v4_v5(state: dict[str, object]) -> None:
        state["support_line"] = None


class SeverityAssigned(Aggregate.Event):
    """Support made the initial severity assessment."""

    class_version = 1
    severity: str  # a Severity value
    agreement: str  # the organisation's Agreement value it was checked against
    policy_version: str
    by: Actor
    at: datetime


class Escalated(Aggregate.Event):
    """Support raised the severity."""

    class_version = 1
    severity: str
    previous_severity: str
    agreement: str
    reason: str
    policy_version: str
    by: Actor
    at: datetime


class CustomerUnresponsive(Aggregate.Event):
    """The customer left a request for information unanswered long enough (§4)."""

    class_version = 1
    requested: str
    asked_at: datetime
    policy_version: str
    by: Actor
    at: datetime


class Downgraded(Aggregate.Event):
    """Support lowered the severity because the customer did not respond (§4).

    `evidence_version` is the aggregate version of the `CustomerUnresponsive` event
    it relies on; the requested item and when it was asked are copied for readers.
    """

    class_version = 1
    severity: str
    previous_severity: str
    reason: str
    evidence_version: int
    evidence_requested: str
    evidence_asked_at: datetime
    policy_version: str
    by: Actor
    at: datetime


class Responded(Aggregate.Event):
    """Support responded; the first response stops the initial-response clock (§7.4).

    v2 added `via`: how the response reached the customer (`phone` or `email`);
    responses recorded before it read as `unknown`.
    """

    class_version = 2
    message_summary: str
    first_response: bool
    via: str
    policy_version: str
    by: Actor
    at: datetime

    @staticmethod
    def upcast_v1_v2(state: dict[str, object]) -> None:
        state["via"] = UNKNOWN_VIA


UNKNOWN_VIA = "unknown"


class AgentAssigned(Aggregate.Event):
    """An agent took, or was given, the case."""

    class_version = 1
    agent_id: str
    by: Actor
    at: datetime


class NoteAdded(Aggregate.Event):
    """A note was added, visible to support only or to the customer too."""

    class_version = 1
    text: str
    visibility: str  # a NoteVisibility value
    by: Actor
    at: datetime


class Resolved(Aggregate.Event):
    """Support resolved the case.

    v2 added the closure reason: `reason`, a code the policy in force defines (a
    `ClosureReason` value), and `out_of_scope`, whether that policy counts the reason as
    outside support's scope (§3). Resolutions recorded before it read as `unspecified`,
    in scope.
    """

    class_version = 2
    resolution: str
    reason: str
    out_of_scope: bool
    policy_version: str
    by: Actor
    at: datetime

    @staticmethod
    def upcast_v1_v2(state: dict[str, object]) -> None:
        state["reason"] = UNSPECIFIED_REASON
        state["out_of_scope"] = False


UNSPECIFIED_REASON = "unspecified"


class Reopened(Aggregate.Event):
    """A resolved case was opened again."""

    class_version = 1
    reason: str
    policy_version: str
    by: Actor
    at: datetime


class SurveyInvited(Aggregate.Event):
    """The customer was invited to answer the satisfaction survey (§6).

    Recorded with the `Resolved` it follows, while the case has no answer yet: a case
    reopened and resolved again is invited again until it is answered, never after.
    `to` is the contact kind the invitation goes to (the case's preferred one), never
    the address: the write side keeps the message for the notifier part to deliver.
    """

    class_version = 1
    to: str  # a ContactKind value
    by: Actor
    at: datetime


class SatisfactionRecorded(Aggregate.Event):
    """The customer's satisfaction survey answer (§6)."""

    class_version = 1
    score: int
    comment: str | None
    by: Actor
    at: datetime


class LinkedToIncident(Aggregate.Event):
    """The case was linked to the service incident it is about.

    Recorded with the opening when the request confirms an incident it was shown first,
    or later by support staff; a later link replaces an earlier one.
    """

    class_version = 1
    incident_id: UUID
    by: Actor
    at: datetime


class PersonalDataErased(Aggregate.Event):
    """The case's personal data was erased on an erasure request (crypto-shredding:
    its data key was destroyed, docs/privacy.md); from here on its personal fields,
    in this event's past, read as erased.

    `subject` names the data subject whose erasure reached it; None when the whole
    organisation's personal data was erased. `reason` names the request (a ticket, a
    letter): it stays readable for the audit, so it must hold no personal data.
    """

    class_version = 1
    subject: str | None
    reason: str
    by: Actor
    at: datetime

    def apply(self, aggregate: Any) -> None:
        forget_case(aggregate)
