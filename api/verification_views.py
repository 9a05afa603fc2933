"""Response bodies of the caller verification routes; no code ever appears in them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from domain.organisations import CallerVerification
from domain.organisations.profile import kind_of
from domain.values import ContactKind


class VerificationSentView(BaseModel):
    """A one-time code went out: where (masked) and until when the caller may read it back."""

    verification_id: UUID
    channel: str = Field(description="email or phone: the registered contact it went to.")
    sent_to: str = Field(description="That contact, masked: i***@acme.example, ***567.")
    expires_at: datetime
    version: int = Field(description="The organisation's new version.")


class CallerVerifiedView(BaseModel):
    """The caller read back the right code: open their case with this verification id."""

    verification_id: UUID
    verified: bool = True
    version: int = Field(description="The organisation's new version.")


class CallerVerificationView(BaseModel):
    """Where a caller verification stands; never its code."""

    verification_id: UUID
    state: str = Field(
        description="pending (a code can be read back until expires_at), verified, used "
        "(it opened case_id), locked (too many wrong codes) or expired (read back too late)."
    )
    sent_to: str = Field(description="The contact the code went to, masked.")
    requested_at: datetime
    expires_at: datetime
    attempts_left: int
    case_id: UUID | None = Field(description="The case it opened, once used.")

    @classmethod
    def of(cls, verification_id: UUID, found: CallerVerification) -> CallerVerificationView:
        if found.used_by is not None:
            state = "used"
        elif found.verified_at is not None:
            state = "verified"
        elif found.locked:
            state = "locked"
        elif found.expired:
            state = "expired"
        else:
            state = "pending"
        return cls(
            verification_id=verification_id,
            state=state,
            sent_to=masked_contact(found.send_to),
            requested_at=found.requested_at,
            expires_at=found.expires_at,
            attempts_left=max(found.max_attempts - found.failed_attempts, 0),
            case_id=found.used_by,
        )


def masked_contact(contact: str) -> str:
    """Enough of a contact for the caller to recognise it, not enough to learn it."""
    if kind_of(contact) is ContactKind.EMAIL:
        name, _, domain = contact.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"***{contact[-3:]}"
