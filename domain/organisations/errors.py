"""Refusals of the Organisation aggregate; each names the rule it protects."""

from __future__ import annotations

from domain.errors import DomainError


class InvalidOrganisationDetails(DomainError):
    """A name, country or time zone of the organisation is missing or unknown."""

    rule = "organisation-details-are-valid"


class OrganisationNeedsAnAdmin(DomainError):
    """An organisation cannot be registered without a customer admin."""

    rule = "organisation-needs-an-admin"


class LastAdminCannotBeRemoved(DomainError):
    """Removing the only admin would leave nobody able to ask for help."""

    rule = "last-admin-stays"


class AdminAlreadyPresent(DomainError):
    """The principal is already an admin of the organisation."""

    rule = "admin-already-added"


class UnknownAdmin(DomainError):
    """The principal is not an admin of the organisation."""

    rule = "admin-not-found"


class InvalidContact(DomainError):
    """A phone number or e-mail address is empty or malformed."""

    rule = "contact-is-valid"


class ContactAlreadyRegistered(DomainError):
    """The phone number or e-mail address is already in the profile."""

    rule = "contact-already-registered"


class UnknownContact(DomainError):
    """The phone number or e-mail address is not in the profile."""

    rule = "contact-not-registered"


class PartnerDetailsInvalid(DomainError):
    """A partner purchase names its partner and contact; a direct one names none."""

    rule = "partner-purchase-names-partner"


class CallerVerificationByStaffOnly(DomainError):
    """Only support staff (or the phone system) send and check verification codes."""

    rule = "support-staff-verify-callers"


class VerificationNotNeeded(DomainError):
    """The caller's number is registered, so no PIN check is needed (§2)."""

    rule = "registered-callers-need-no-pin"


class VerificationTargetNotRegistered(DomainError):
    """The code must go to a phone or e-mail registered in the profile (§2)."""

    rule = "pin-goes-to-registered-contact"


class InvalidVerificationRequest(DomainError):
    """The code is empty or already expired."""

    rule = "verification-request-is-valid"


class VerificationAlreadyRequested(DomainError):
    """A verification with this id already exists."""

    rule = "verification-id-is-unique"


class UnknownVerification(DomainError):
    """No verification with this id was requested for the organisation."""

    rule = "verification-not-found"


class VerificationAlreadyCompleted(DomainError):
    """The caller was already verified with this code; a code is used once."""

    rule = "verification-already-completed"


class VerificationExpired(DomainError):
    """The code expired; send a new one."""

    rule = "verification-code-expired"


class VerificationLocked(DomainError):
    """Too many wrong codes; the verification is locked, send a new one."""

    rule = "verification-attempts-exhausted"


class WrongVerificationCode(DomainError):
    """The code read back is not the one that was sent; the failed attempt is recorded."""

    rule = "verification-code-matches"


class VerificationAlreadyUsed(DomainError):
    """A verification opens at most one case; verify the caller again for another."""

    rule = "verification-opens-one-case"
