"""The phone identity check (PIN) of policy §2, as state and rules."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.organisations import errors
from domain.organisations.profile import kind_of, normalise
from domain.policy.model import CallerVerificationSpec
from domain.values import Actor, ContactKind, Role

# Product decisions where §2 is silent: the policy file's [caller_verification] (6 digits,
# 10 minutes, 5 attempts unless it says otherwise).
DEFAULT_RULES = CallerVerificationSpec()


@dataclass(frozen=True)
class CallerVerification:
    """One PIN check of a caller whose number is not registered (§2)."""

    caller_phone: str
    send_to: str
    code_digest: str
    requested_at: datetime
    expires_at: datetime
    max_attempts: int
    failed_attempts: int = 0
    verified_at: datetime | None = None
    expired: bool = False  # a confirmation came too late (CallerVerificationExpired)
    used_by: UUID | None = None  # the case this verification opened

    @property
    def locked(self) -> bool:
        """No attempts left and never verified."""
        return self.verified_at is None and self.failed_attempts >= self.max_attempts

    def refuse_confirmation(self) -> None:
        """Raise when no code may be checked any more: verified, locked or expired."""
        if self.verified_at is not None:
            raise errors.VerificationAlreadyCompleted(
                "The caller is already verified with this code; a code is used once."
            )
        if self.locked:
            raise errors.VerificationLocked(
                f"{self.max_attempts} wrong codes were given; send a new code."
            )
        if self.expired:
            raise errors.VerificationExpired("The verification code expired; send a new code.")

    def matches(self, verification_id: UUID, code: str) -> bool:
        """True when `code` is the code that was sent (constant-time comparison)."""
        return hmac.compare_digest(self.code_digest, code_digest(verification_id, code))

    def proves(self, caller_phone: str, at: datetime) -> bool:
        """True when verified for this (normalised) number, unused and not expired at `at`."""
        return (
            self.verified_at is not None
            and self.used_by is None
            and self.caller_phone == caller_phone
            and self.verified_at <= at <= self.expires_at
        )


@dataclass(frozen=True)
class VerificationOutcome:
    """What reading back a code achieved: a wrong or late code is an outcome, not a refusal."""

    verified: bool
    attempts_left: int
    expired: bool = False

    @property
    def locked(self) -> bool:
        """The caller may not try again; a new code must be sent."""
        return not self.verified and not self.expired and self.attempts_left == 0


def code_digest(verification_id: UUID, code: str) -> str:
    """SHA-256 of the code salted with the verification id; the code is never stored."""
    # Equal codes never share a digest. A short numeric code stays guessable offline
    # from its digest; the short expiry and the attempt limit are what protect it, and
    # the digest never leaves the event store (contract.case_events.SECRET_FIELDS).
    spoken = "".join(code.split())  # "12 34 56" read aloud is "123456"
    return hashlib.sha256(verification_id.bytes + spoken.encode()).hexdigest()


def require_verifier(by: Actor) -> None:
    """Only support staff or the phone system send and check codes."""
    if not (by.is_support_staff or by.role is Role.SYSTEM):
        raise errors.CallerVerificationByStaffOnly(
            "Only support agents, supervisors or the phone system send and check "
            "verification codes."
        )


def verification_target(
    send_to: str | None, emails: set[str], phones: set[str], name: str
) -> tuple[ContactKind, str]:
    """Where the code goes: `send_to` if registered, else the first registered e-mail or phone."""
    if send_to is None:
        registered = [*sorted(emails), *sorted(phones)]
        send_to = registered[0] if registered else ""
    kind = kind_of(send_to) if send_to else ContactKind.EMAIL
    target = normalise(kind, send_to) if send_to else ""
    if target not in (phones if kind is ContactKind.PHONE else emails):
        raise errors.VerificationTargetNotRegistered(
            f"{send_to or 'No contact'} is not a registered phone or e-mail of {name}; "
            "send the code only to a registered contact."
        )
    return kind, target
