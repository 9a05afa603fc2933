"""The Organisation aggregate: who may ask for help and how to reach them (§1, §2).

It stays one module because it holds the aggregate's command methods, one per rule of
the policy; the events and rules live beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.clocked import ClockedAggregate
from domain.errors import require_time_order
from domain.organisations import errors, events, profile
from domain.organisations.profile import PurchaseChannel, normalise, normalise_phone
from domain.organisations.verification import (
    DEFAULT_RULES,
    CallerVerification,
    VerificationOutcome,
    code_digest,
    require_verifier,
    verification_target,
)
from domain.policy.model import CallerVerificationSpec, CustomerLocale
from domain.values import Actor, Agreement, Channel, ContactKind


class Organisation(ClockedAggregate):
    """A customer organisation with its admins, contacts, agreement and locale.

    Each public command checks the rules (raising a `DomainError` and recording
    nothing), then triggers one explicit event from `domain.organisations.events`.
    The `@event` method named after that event only changes state, taking just the
    attributes it needs; it runs when the event is triggered and again on replay.
    """

    Registered = events.Registered
    AdminAdded = events.AdminAdded
    AdminRemoved = events.AdminRemoved
    ContactRegistered = events.ContactRegistered
    ContactRemoved = events.ContactRemoved
    AgreementChanged = events.AgreementChanged
    PurchaseChannelChanged = events.PurchaseChannelChanged
    LocaleChanged = events.LocaleChanged
    CallerVerificationRequested = events.CallerVerificationRequested
    CallerVerified = events.CallerVerified
    CallerVerificationFailed = events.CallerVerificationFailed
    CallerVerificationExpired = events.CallerVerificationExpired
    CallerVerificationLocked = events.CallerVerificationLocked
    CallerVerificationUsed = events.CallerVerificationUsed
    PersonalDataErased = events.PersonalDataErased  # recorded by domain.erasure

    @classmethod
    def register(
        cls,
        *,
        name: str,
        country: str,
        timezone: str,
        agreement: Agreement,
        admins: Iterable[str],
        by: Actor,
        at: datetime,
        phones: Iterable[str] = (),
        emails: Iterable[str] = (),
        purchase_channel: PurchaseChannel = PurchaseChannel.DIRECT,
        partner_name: str | None = None,
        partner_contact: str | None = None,
        organisation_id: UUID | None = None,
    ) -> Organisation:
        """Register an organisation; it needs at least one customer admin."""
        require_time_order(at)
        fields = profile.registration(
            name=name,
            country=country,
            timezone=timezone,
            agreement=agreement,
            admins=admins,
            phones=phones,
            emails=emails,
            purchase_channel=purchase_channel,
            partner_name=partner_name,
            partner_contact=partner_contact,
        )
        return cls._create(cls.Registered, id=organisation_id, timestamp=at, by=by, at=at, **fields)

    @event(Registered)
    def __init__(
        self,
        *,
        name: str,
        country: str,
        timezone: str,
        agreement: str,
        purchase_channel: str,
        partner_name: str | None,
        partner_contact: str | None,
        admins: tuple[str, ...],
        phones: tuple[str, ...],
        emails: tuple[str, ...],
        by: Actor,
        at: datetime,
    ) -> None:
        self.name = name
        self.country = country
        self.timezone = timezone
        self.agreement = Agreement(agreement)
        self.purchase_channel = PurchaseChannel(purchase_channel)
        self.partner_name = partner_name
        self.partner_contact = partner_contact
        self.admins: set[str] = set(admins)
        self.phones: set[str] = set(phones)
        self.emails: set[str] = set(emails)
        self.registered_at = at
        self.verifications: dict[UUID, CallerVerification] = {}

    def is_admin(self, principal_id: str) -> bool:
        """True when the principal is a customer admin of this organisation."""
        return principal_id in self.admins

    def has_registered_phone(self, phone: str) -> bool:
        """True when the number, in any common spelling, is in the profile."""
        return normalise_phone(phone) in self.phones

    @property
    def bought_through_partner(self) -> bool:
        """True when a partner sold the subscription and is the first contact (§1)."""
        return self.purchase_channel is PurchaseChannel.PARTNER

    @property
    def locale(self) -> CustomerLocale:
        """The customer's zone and country, for calendars that depend on them (§7.3)."""
        return CustomerLocale(timezone=self.timezone, country=self.country)

    def is_caller_verified(
        self, verification_id: UUID | None, caller_phone: str, at: datetime
    ) -> bool:
        """True when this caller read back the right code and it is still valid at `at`."""
        found = self.verifications.get(verification_id) if verification_id else None
        return found is not None and found.proves(normalise_phone(caller_phone), at)

    def add_admin(self, principal_id: str, *, by: Actor, at: datetime) -> None:
        """Make a principal a customer admin of this organisation."""
        self._require_time(at)
        if profile.principal(principal_id) in self.admins:
            raise errors.AdminAlreadyPresent(f"{principal_id} is already an administrator.")
        self.trigger_event(self.AdminAdded, principal_id=principal_id, by=by, at=at)

    @event(AdminAdded)
    def _admin_added(self, principal_id: str) -> None:
        self.admins.add(principal_id)

    def remove_admin(self, principal_id: str, *, by: Actor, at: datetime) -> None:
        """Stop a principal being a customer admin; the last admin stays."""
        self._require_time(at)
        if principal_id not in self.admins:
            raise errors.UnknownAdmin(f"{principal_id} is not an administrator of {self.name}.")
        if len(self.admins) == 1:
            raise errors.LastAdminCannotBeRemoved(
                f"{principal_id} is the only administrator of {self.name}; "
                "add another administrator first."
            )
        self.trigger_event(self.AdminRemoved, principal_id=principal_id, by=by, at=at)

    @event(AdminRemoved)
    def _admin_removed(self, principal_id: str) -> None:
        self.admins.discard(principal_id)

    def register_contact(self, kind: ContactKind, value: str, *, by: Actor, at: datetime) -> None:
        """Add a phone number or e-mail address to the profile."""
        self._require_time(at)
        normalised = normalise(kind, value)
        if normalised in self._contacts(kind):
            raise errors.ContactAlreadyRegistered(f"{value} is already registered.")
        self.trigger_event(
            self.ContactRegistered, kind=ContactKind(kind), value=normalised, by=by, at=at
        )

    @event(ContactRegistered)
    def _contact_registered(self, kind: str, value: str) -> None:
        self._contacts(ContactKind(kind)).add(value)

    def remove_contact(self, kind: ContactKind, value: str, *, by: Actor, at: datetime) -> None:
        """Remove a phone number or e-mail address from the profile."""
        self._require_time(at)
        normalised = normalise(kind, value)
        if normalised not in self._contacts(kind):
            raise errors.UnknownContact(f"{value} is not registered for {self.name}.")
        self.trigger_event(
            self.ContactRemoved, kind=ContactKind(kind), value=normalised, by=by, at=at
        )

    @event(ContactRemoved)
    def _contact_removed(self, kind: str, value: str) -> None:
        self._contacts(ContactKind(kind)).discard(value)

    def change_agreement(self, agreement: Agreement, *, by: Actor, at: datetime) -> None:
        """Record a new support agreement (standard or advanced)."""
        self._require_time(at)
        self.trigger_event(self.AgreementChanged, agreement=Agreement(agreement), by=by, at=at)

    @event(AgreementChanged)
    def _agreement_changed(self, agreement: str) -> None:
        self.agreement = Agreement(agreement)

    def change_purchase_channel(
        self,
        purchase_channel: PurchaseChannel,
        *,
        by: Actor,
        at: datetime,
        partner_name: str | None = None,
        partner_contact: str | None = None,
    ) -> None:
        """Record that the subscription is bought directly or through a partner."""
        self._require_time(at)
        profile.check_partner(purchase_channel, partner_name, partner_contact)
        self.trigger_event(
            self.PurchaseChannelChanged,
            purchase_channel=PurchaseChannel(purchase_channel),
            partner_name=partner_name,
            partner_contact=partner_contact,
            by=by,
            at=at,
        )

    @event(PurchaseChannelChanged)
    def _purchase_channel_changed(
        self, purchase_channel: str, partner_name: str | None, partner_contact: str | None
    ) -> None:
        self.purchase_channel = PurchaseChannel(purchase_channel)
        self.partner_name = partner_name
        self.partner_contact = partner_contact

    def change_locale(self, *, country: str, timezone: str, by: Actor, at: datetime) -> None:
        """Record the organisation's new country and IANA time zone."""
        self._require_time(at)
        where = profile.locale(country, timezone)
        self.trigger_event(
            self.LocaleChanged, country=where.country, timezone=where.timezone, by=by, at=at
        )

    @event(LocaleChanged)
    def _locale_changed(self, country: str, timezone: str) -> None:
        self.country = country
        self.timezone = timezone

    def request_caller_verification(
        self,
        verification_id: UUID,
        *,
        caller_phone: str,
        code: str,
        by: Actor,
        at: datetime,
        send_to: str | None = None,
        rules: CallerVerificationSpec = DEFAULT_RULES,
        expires_at: datetime | None = None,
    ) -> None:
        """Record that a one-time code went to a registered contact for this caller.

        The code is generated by the caller of this method (randomness is injected);
        only its digest, salted with the verification id, is recorded. Without
        `send_to` the code goes to the first registered e-mail, else phone; it expires
        as the policy's `rules` say (or at `expires_at`) and allows their attempts.
        """
        self._require_time(at)
        require_verifier(by)
        phone = normalise(ContactKind.PHONE, caller_phone)
        if phone in self.phones:
            raise errors.VerificationNotNeeded(
                f"{caller_phone} is registered for {self.name}; no verification code is needed."
            )
        kind, target = verification_target(send_to, self.emails, self.phones, self.name)
        if verification_id in self.verifications:
            raise errors.VerificationAlreadyRequested(f"Verification {verification_id} exists.")
        expires_at = expires_at or at + rules.lifetime
        max_attempts = rules.max_attempts
        if not code.strip() or expires_at <= at:
            raise errors.InvalidVerificationRequest(
                "A verification needs a code and an expiry after now."
            )
        self.trigger_event(
            self.CallerVerificationRequested,
            verification_id=verification_id,
            caller_phone=phone,
            send_to_kind=kind,
            send_to=target,
            code_digest=code_digest(verification_id, code),
            expires_at=expires_at,
            max_attempts=max_attempts,
            by=by,
            at=at,
        )

    @event(CallerVerificationRequested)
    def _verification_requested(
        self,
        verification_id: UUID,
        caller_phone: str,
        send_to: str,
        code_digest: str,
        expires_at: datetime,
        max_attempts: int,
        at: datetime,
    ) -> None:
        self.verifications[verification_id] = CallerVerification(
            caller_phone, send_to, code_digest, at, expires_at, max_attempts
        )

    def confirm_caller_verification(
        self, verification_id: UUID, code: str, *, by: Actor, at: datetime
    ) -> VerificationOutcome:
        """Check the code the caller read back; record and return the outcome.

        A wrong or late code is an outcome, not a broken rule: it records `...Failed` (and
        `...Locked` on the last allowed attempt) or `...Expired` and returns
        `verified=False`, events the application must save. Refusals (unknown, verified,
        locked, expired before) raise and record nothing.
        """
        self._require_time(at)
        require_verifier(by)
        found = self.verifications.get(verification_id)
        if found is None:
            raise errors.UnknownVerification(
                f"No verification {verification_id} was requested for {self.name}."
            )
        found.refuse_confirmation()
        kw = {"verification_id": verification_id, "by": by, "at": at}
        if at > found.expires_at:
            self.trigger_event(self.CallerVerificationExpired, **kw)
            return VerificationOutcome(verified=False, attempts_left=0, expired=True)
        if found.matches(verification_id, code):
            self.trigger_event(self.CallerVerified, **kw)
            return VerificationOutcome(verified=True, attempts_left=found.max_attempts)
        attempt = found.failed_attempts + 1
        locked = attempt >= found.max_attempts
        self.trigger_event(self.CallerVerificationFailed, attempt=attempt, locked=locked, **kw)
        if locked:
            self.trigger_event(self.CallerVerificationLocked, attempts=attempt, **kw)
        return VerificationOutcome(verified=False, attempts_left=found.max_attempts - attempt)

    def use_caller_verification(
        self,
        verification_id: UUID | None,
        caller_phone: str | None,
        case_id: UUID,
        *,
        by: Actor,
        at: datetime,
    ) -> None:
        """Record that the verification let this caller open `case_id`, so it opens no other.

        Nothing is recorded when none was needed (not a phone call, a registered number);
        `ServiceRequest.open` checked first that the verification proves the caller.
        """
        if (
            by.channel is not Channel.PHONE
            or verification_id is None
            or not caller_phone
            or self.has_registered_phone(caller_phone)
        ):
            return
        self.trigger_event(
            self.CallerVerificationUsed,
            verification_id=verification_id,
            case_id=case_id,
            by=by,
            at=at,
        )

    def require_unused_verification(self, verification_id: UUID | None) -> None:
        """Refuse a verification that already opened a case (a code is used once)."""
        found = self.verifications.get(verification_id) if verification_id else None
        if found is not None and found.used_by is not None:
            raise errors.VerificationAlreadyUsed(
                f"Verification {verification_id} already opened case {found.used_by}; "
                "send a new code to verify the caller again."
            )

    @event(CallerVerified)
    def _caller_verified(self, verification_id: UUID, at: datetime) -> None:
        self._change_verification(verification_id, verified_at=at)

    @event(CallerVerificationFailed)
    def _verification_failed(self, verification_id: UUID, attempt: int) -> None:
        self._change_verification(verification_id, failed_attempts=attempt)

    @event(CallerVerificationExpired)
    def _verification_expired(self, verification_id: UUID) -> None:
        self._change_verification(verification_id, expired=True)

    @event(CallerVerificationLocked)
    def _verification_locked(self, verification_id: UUID, attempts: int) -> None:
        self._change_verification(verification_id, failed_attempts=attempts)

    @event(CallerVerificationUsed)
    def _verification_used(self, verification_id: UUID, case_id: UUID) -> None:
        self._change_verification(verification_id, used_by=case_id)

    def _change_verification(self, verification_id: UUID, **changes: Any) -> None:
        self.verifications[verification_id] = replace(
            self.verifications[verification_id], **changes
        )

    def _require_time(self, at: datetime) -> None:
        require_time_order(at, after=self.modified_on)

    def _contacts(self, kind: ContactKind) -> set[str]:
        return self.phones if ContactKind(kind) is ContactKind.PHONE else self.emails
