"""Response bodies of the auditor routes (the CLI prints the same shapes with --json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from api.views import CaseView, EventView
from projections.audit.chain import Break
from projections.audit.completeness import MissingEntry
from projections.audit.history import CaseAsOf, CaseChange
from projections.audit.verify import Verification


class AuditEntryView(BaseModel):
    """One audit entry: what happened, when, who acted from where (channel; API key,
    client address and request id for commands sent through the API), what changed."""

    entry_id: int
    stream: str = Field(description="case, organisation or sla")
    subject: UUID
    seq: int = Field(description="Position in the (stream, subject) hash chain, from 1.")
    event_id: str
    event_type: str
    case_id: UUID | None
    organisation_id: UUID | None
    occurred_at: datetime
    recorded_at: datetime
    actor_id: str | None
    actor_role: str | None
    channel: str | None
    outcome: str
    changes: dict[str, Any] = Field(description="Changed fields: name -> [before, after].")
    prev_hash: str
    hash: str
    api_key_id: str | None = Field(
        default=None,
        description="The API key the command was sent with; null for commands not sent "
        "through the API (and entries recorded before origins were kept). Hashed when set.",
    )
    client_address: str | None = Field(
        default=None, description="The address of the API client that sent the command."
    )
    request_id: str | None = Field(
        default=None, description="The API request's X-Request-ID, as in the API's logs."
    )


class TimelineView(BaseModel):
    """A case's audit entries, its own and its SLA clocks', in the order things happened."""

    case_id: UUID
    entries: list[AuditEntryView]


class CaseStateView(BaseModel):
    """The case as it was at an instant or version, rebuilt from the event store."""

    case_id: UUID
    version: int = Field(description="The version in force at the instant asked for.")
    version_at: datetime = Field(description="When that version's event happened.")
    state: CaseView

    @classmethod
    def of(cls, case_id: UUID, found: CaseAsOf) -> CaseStateView:
        assert found.case is not None and found.at is not None
        return cls(
            case_id=case_id,
            version=found.version,
            version_at=found.at,
            state=CaseView.of(found.case),
        )


class FieldChangeView(BaseModel):
    """One field of the case's state that differs between the two versions."""

    field: str
    before: Any
    after: Any


class CaseDiffView(BaseModel):
    """What changed in a case between two versions: each field before -> after, the events."""

    case_id: UUID
    from_version: int = Field(description="0 when the start precedes the opening.")
    from_version_at: datetime | None
    to_version: int
    to_version_at: datetime | None
    changes: list[FieldChangeView]
    events: list[EventView] = Field(description="The events after from_version up to to_version.")

    @classmethod
    def of(cls, case_id: UUID, change: CaseChange) -> CaseDiffView:
        return cls(
            case_id=case_id,
            from_version=change.before.version,
            from_version_at=change.before.at,
            to_version=change.after.version,
            to_version_at=change.after.at,
            changes=[
                FieldChangeView(field=name, before=before, after=after)
                for name, before, after in field_changes(change.before, change.after)
            ],
            events=[EventView.of(event) for event in change.events],
        )


def state_fields(found: CaseAsOf) -> dict[str, Any]:
    """The case's state as plain JSON values, without its version (empty before opening)."""
    if found.case is None:
        return {}
    fields = CaseView.of(found.case).model_dump(mode="json")
    fields.pop("version")
    return fields


def field_changes(before: CaseAsOf, after: CaseAsOf) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for every field of the state that differs, in field order."""
    old, new = state_fields(before), state_fields(after)
    names = [*new, *(name for name in old if name not in new)]
    return [
        (name, old.get(name), new.get(name)) for name in names if old.get(name) != new.get(name)
    ]


class BreakView(BaseModel):
    """The first entry of a chain that does not link, and why (stream `access`, subject
    `log`: the access log's chain; then `seq` and `entry_id` are the access record's)."""

    stream: str
    subject: str
    seq: int | None
    entry_id: int | None = Field(description="The entry's id, or the access record's access_id.")
    reason: str
    description: str

    @classmethod
    def of(cls, found: Break) -> BreakView:
        return cls(
            stream=found.stream,
            subject=found.subject,
            seq=found.seq,
            entry_id=found.entry_id,
            reason=found.reason,
            description=found.describe(),
        )


class MissingEntryView(BaseModel):
    """The first stored event of a chain that has no audit entry."""

    stream: str
    subject: str
    event_id: str
    sequence: int = Field(description="The event's version; for stream sla, its outbox id.")
    event_type: str
    missing_in_chain: int = Field(description="Events of this chain without an entry.")
    published: bool = Field(description="False: not published yet, the pipeline is behind.")
    why: str | None = Field(description="What the audit consumer recorded about it, if anything.")
    description: str

    @classmethod
    def of(cls, found: MissingEntry) -> MissingEntryView:
        return cls(
            stream=found.stream,
            subject=found.subject,
            event_id=found.event_id,
            sequence=found.sequence,
            event_type=found.event_type,
            missing_in_chain=found.missing_in_chain,
            published=found.published,
            why=found.why,
            description=found.describe(),
        )


class VerificationView(BaseModel):
    """What a verification covered: each broken chain at its first bad entry (modified),
    and the stored events the log has no entry for (incomplete)."""

    intact: bool = Field(description="Unmodified and complete.")
    unmodified: bool = Field(description="Every chain links and ends at its recorded head.")
    complete: bool | None = Field(
        description="Every stored event and SLA event has its entry (null: not checked)."
    )
    chains: int
    entries: int
    access_records: int = Field(
        description="Access records checked (their chain, its head and the signed heads); "
        "0 for a case's verification, which leaves the access log out."
    )
    breaks: list[BreakView]
    missing_entries: int = Field(description="Stored events without an entry, in all.")
    incomplete_chains: int
    missing: list[MissingEntryView] = Field(
        description="The first missing event of each incomplete chain (the first 20 chains)."
    )

    @classmethod
    def of(cls, result: Verification) -> VerificationView:
        found = result.completeness
        return cls(
            intact=result.intact,
            unmodified=result.unmodified,
            complete=result.complete,
            chains=result.chains,
            entries=result.entries,
            access_records=result.access_records,
            breaks=[BreakView.of(b) for b in result.breaks],
            missing_entries=found.missing_entries if found else 0,
            incomplete_chains=found.incomplete_chains if found else 0,
            missing=[MissingEntryView.of(m) for m in found.first_missing] if found else [],
        )


class AccessView(BaseModel):
    """One read of case data through the API."""

    access_id: int
    at: datetime
    principal_id: str
    role: str
    route: str
    method: str
    path: str
    case_id: UUID | None
    organisation_id: UUID | None
    reason: str | None
    request_id: str | None
    client_address: str | None
    on_behalf_of: str | None = Field(
        default=None, description="The customer admin a portal key read for (role portal)."
    )
    seq: int = Field(description="Its place in the access log's hash chain (1, 2, ...).")
    hash: str = Field(
        description="SHA-256 of its canonical encoding and the record before it's hash: what "
        "a checkpoint's access_hash names."
    )


class AccessPageView(BaseModel):
    """One page of access records, oldest first; `next` continues it."""

    items: list[AccessView]
    next_cursor: str | None
    next: str | None
