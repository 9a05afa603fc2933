"""What the personal-data routes take and answer: an erasure asked and its report, a
subject's data."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from casebook.personal_data import ErasureReport


class ErasureBody(BaseModel):
    """Whose personal data to erase, and the request that asks for it."""

    model_config = ConfigDict(extra="forbid")

    organisation_id: UUID | None = Field(
        default=None,
        description="Erase this organisation's personal data (with `subject`: only that "
        "subject's within it).",
    )
    subject: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="Erase this data subject's (a requester's principal id)."
    )
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ] = Field(
        description="The request honoured (a ticket, a letter): kept in clear, so no personal data."
    )

    @model_validator(mode="after")
    def _names_a_scope(self) -> ErasureBody:
        if self.organisation_id is None and self.subject is None:
            raise ValueError("give organisation_id, subject or both")
        return self


class ErasureView(BaseModel):
    """What an erasure did: keys destroyed, cases reached, erasure events recorded."""

    erasure_id: int
    keys_destroyed: int
    cases: int
    recorded: int = Field(description="PersonalDataErased events recorded (organisation + cases).")

    @classmethod
    def of(cls, report: ErasureReport) -> ErasureView:
        return cls(**asdict(report))


class SubjectEventView(BaseModel):
    version: int
    at: str
    fields: dict[str, Any] = Field(description="The event's personal fields, as kept.")


class SubjectCaseView(BaseModel):
    case_id: UUID
    organisation_id: UUID
    events: list[SubjectEventView]


class SubjectDataView(BaseModel):
    """Every personal field kept of a data subject's cases (GDPR art. 15 access)."""

    subject: str
    cases: list[SubjectCaseView]
