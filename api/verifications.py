"""Caller verification (policy §2): send a one-time code, then check what the caller reads back.

The code is drawn here (`secrets`), goes out through the notifier and into the command,
whose aggregate records only its salted digest; it is never logged, returned or
published. Sending comes first and recording second, so the store never holds a
verification whose code did not go out: the request is first checked against a fresh
copy of the organisation (same rules, nothing saved), then the code is sent (a failure
records nothing: 503 `notification-delivered`), then the verification is recorded. If
that last step is refused (the profile changed meanwhile, the database went away) the
code that went out belongs to no verification and opens nothing.

A wrong or late code is recorded (an attempt, a lock, an expiry) and then answered as a
refusal naming its rule, so the client sees the same problem+json as for any other.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from fastapi.concurrency import run_in_threadpool

from api.verification_views import masked_contact
from casebook import commands as c
from casebook.application import Casebook
from contract.case_events import type_name
from domain.organisations import Organisation
from domain.organisations import errors as org_errors
from domain.organisations.profile import kind_of
from domain.organisations.verification import CallerVerification
from domain.policy.model import CallerVerificationSpec
from domain.values import ContactKind
from messaging.notifications import Notification, Notifier

LOCKED = type_name(Organisation.CallerVerificationLocked)
EXPIRED = type_name(Organisation.CallerVerificationExpired)
FAILED = type_name(Organisation.CallerVerificationFailed)


@dataclass(frozen=True)
class Sent:
    """A code that went out: to which channel (masked) and until when it is valid."""

    verification_id: UUID
    channel: Literal["email", "phone"]
    sent_to: str
    expires_at: datetime
    version: int


def new_code(rules: CallerVerificationSpec) -> str:
    """A uniformly random code of the policy's number of digits, leading zeros kept."""
    return f"{secrets.randbelow(10**rules.code_digits):0{rules.code_digits}d}"


async def send_code(
    casebook: Casebook,
    notifier: Notifier,
    command: c.RequestCallerVerification,
    context: c.CommandContext,
) -> Sent:
    """Check, send, record; see the module docstring for what happens on each failure."""
    trial = await run_in_threadpool(casebook.get_organisation, command.organisation_id)
    trial.request_caller_verification(
        command.verification_id,
        caller_phone=command.caller_phone,
        code=command.code,
        send_to=command.send_to,
        rules=casebook.policy.caller_verification,
        by=context.actor,
        at=trial.modified_on,
    )
    target = trial.verifications[command.verification_id]
    kind: Literal["email", "phone"] = (
        "phone" if kind_of(target.send_to) is ContactKind.PHONE else "email"
    )
    await run_in_threadpool(
        notifier.send,
        _message(trial, kind, target, command.code, target.expires_at - target.requested_at),
    )
    result = await casebook.run(command, context)
    recorded = await run_in_threadpool(casebook.get_organisation, command.organisation_id)
    expires_at = recorded.verifications[command.verification_id].expires_at
    return Sent(
        command.verification_id, kind, masked_contact(target.send_to), expires_at, result.version
    )


def _message(
    org: Organisation,
    kind: Literal["email", "phone"],
    target: CallerVerification,
    code: str,
    lifetime: timedelta,
) -> Notification:
    minutes = int(lifetime.total_seconds() // 60)
    return Notification(
        organisation_id=org.id,
        kind=kind,
        recipient=target.send_to,
        subject=f"Your {org.name} support verification code",
        message=(
            f"Someone calling support for {org.name} from a number that is not in your "
            f"profile asked for this code: {code}. Read it to the support agent only if "
            f"that caller is you or someone you trust. It is valid for {minutes} minutes."
        ),
    )


async def check_code(
    casebook: Casebook, command: c.ConfirmCallerVerification, context: c.CommandContext
) -> c.CommandResult:
    """Record the read-back; refuse (after recording) a wrong, locked-out or late code."""
    result = await casebook.run(command, context)
    if LOCKED in result.events:
        raise org_errors.VerificationLocked(
            "That was the last attempt: the verification is locked; send a new code."
        )
    if EXPIRED in result.events:
        raise org_errors.VerificationExpired("The verification code expired; send a new code.")
    if FAILED in result.events:
        org = await run_in_threadpool(casebook.get_organisation, command.organisation_id)
        found = org.verifications[command.verification_id]
        left = found.max_attempts - found.failed_attempts
        raise org_errors.WrongVerificationCode(
            f"That is not the code that was sent; {left} attempt(s) left."
        )
    return result
