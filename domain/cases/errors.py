"""Refusals of the ServiceRequest aggregate; each names the rule it protects.

The severity refusals of §4 live with the policy (`domain.policy.rules`) and are
re-exported here so callers find every case refusal in one place.
"""

from __future__ import annotations

from domain.errors import DomainError
from domain.policy.rules import (
    SeverityAboveCategoryCap,
    SeverityNeedsAgreement,
    SeverityNotForCategory,
)

__all__ = [
    "AgentAlreadyAssigned",
    "AgentsSelfAssignOnly",
    "CallerNotVerified",
    "CallerPhoneRequired",
    "CaseAlreadyLinkedToIncident",
    "CaseIsClosed",
    "CaseNotResolved",
    "ClosureReasonUnknown",
    "CustomerNotYetUnresponsive",
    "CustomerNotesAreCustomerVisible",
    "DowngradeMustLower",
    "EscalationMustRaise",
    "NoStandingUnresponsiveRecord",
    "NotOrganisationsCase",
    "OpenerNotAllowed",
    "PartnerContactNotAcknowledged",
    "RequesterNotAdmin",
    "RequiredTextMissing",
    "ResolveNeedsFirstResponse",
    "SatisfactionAlreadyRecorded",
    "SatisfactionBeforeResolution",
    "SatisfactionByCustomerOrSystem",
    "SatisfactionScoreOutOfRange",
    "SeverityAboveCategoryCap",
    "SeverityAlreadyAssigned",
    "SeverityNeedsAgreement",
    "SeverityNotAssessed",
    "SeverityNotForCategory",
    "StaffOrOrganisationAdminOnly",
    "SupportLineOnlyByPhone",
    "SupportLineUnknown",
    "SupportStaffOnly",
    "TitleRequired",
    "UnresponsiveAskedInFuture",
    "UnsupportedWaitingPeriod",
]


class RequesterNotAdmin(DomainError):
    """Only customer admins of the organisation may open a request (§1)."""

    rule = "only-customer-admins-open-requests"


class OpenerNotAllowed(DomainError):
    """A request is opened by the admin (online or phone) or by staff for them by phone."""

    rule = "opened-by-admin-or-staff-on-their-behalf"


class CallerPhoneRequired(DomainError):
    """A request taken by phone records the number the caller uses."""

    rule = "phone-requests-record-caller-number"


class CallerNotVerified(DomainError):
    """A caller on an unregistered number must read back a one-time code first (§2)."""

    rule = "unregistered-callers-verify-pin"


class SupportLineUnknown(DomainError):
    """A phone request names one of the policy's support lines (§2)."""

    rule = "support-line-is-known"
    field = "body.support_line"


class SupportLineOnlyByPhone(DomainError):
    """Only a request opened by phone came in on a support line."""

    rule = "support-line-only-for-phone-requests"
    field = "body.support_line"


class PartnerContactNotAcknowledged(DomainError):
    """A partner customer sees the partner's contact before going direct (§1)."""

    rule = "partner-customers-see-partner-contact-first"

    def __init__(self, message: str, *, partner_name: str, partner_contact: str) -> None:
        super().__init__(message)
        self.partner_name = partner_name
        self.partner_contact = partner_contact

    @property
    def details(self) -> dict[str, object]:
        # Shown before anything is filed; confirming goes on to the provider.
        return {"partner": {"name": self.partner_name, "contact": self.partner_contact}}


class RequiredTextMissing(DomainError):
    """A required text (contact details, reason, summary, note) is empty."""

    rule = "required-text-missing"


class TitleRequired(RequiredTextMissing):
    """A request needs a title."""

    rule = "title-is-required"


class ClosureReasonUnknown(DomainError):
    """A resolution names a closure reason the policy in force does not define."""

    rule = "closure-reason-is-known"


class CaseAlreadyLinkedToIncident(DomainError):
    """A case is linked to an incident once; linking it to the same one changes nothing."""

    rule = "case-linked-to-incident-once"


class CaseIsClosed(DomainError):
    """A resolved case accepts only a reopen or a satisfaction answer."""

    rule = "resolved-case-is-closed"


class SupportStaffOnly(DomainError):
    """Only support agents and supervisors may do this."""

    rule = "support-staff-only"


class StaffOrOrganisationAdminOnly(DomainError):
    """Only support staff or an admin of the case's organisation may do this."""

    rule = "staff-or-organisation-admin-only"


class NotOrganisationsCase(DomainError):
    """The organisation given is not the one the case belongs to."""

    rule = "organisation-matches-case"


class SeverityAlreadyAssigned(DomainError):
    """The initial assessment happens once; later changes escalate or downgrade."""

    rule = "severity-assigned-once"


class SeverityNotAssessed(DomainError):
    """The case has no severity yet; assess it first."""

    rule = "severity-assessed-first"


class EscalationMustRaise(DomainError):
    """An escalation makes the severity strictly more severe."""

    rule = "escalation-raises-severity"


class DowngradeMustLower(DomainError):
    """A downgrade makes the severity strictly less severe."""

    rule = "downgrade-lowers-severity"


class NoStandingUnresponsiveRecord(DomainError):
    """A downgrade needs an unused record of the customer not responding (§4)."""

    rule = "downgrade-needs-unresponsive-customer"


class CustomerNotYetUnresponsive(DomainError):
    """The customer has not yet had the policy's time to respond."""

    rule = "unresponsive-after-waiting-period"


class UnresponsiveAskedInFuture(DomainError):
    """The customer cannot have been asked after the moment of recording."""

    rule = "asked-at-not-in-future"


class UnsupportedWaitingPeriod(DomainError):
    """The policy's waiting period must be in hours or minutes, not business days."""

    rule = "unresponsive-wait-in-clock-time"


class ResolveNeedsFirstResponse(DomainError):
    """A case is resolved only after support responded at least once."""

    rule = "resolve-after-first-response"


class CaseNotResolved(DomainError):
    """Only a resolved case can be reopened."""

    rule = "only-resolved-cases-reopen"


class AgentsSelfAssignOnly(DomainError):
    """An agent may assign a case only to themself; supervisors assign anyone."""

    rule = "agents-self-assign-only"


class AgentAlreadyAssigned(DomainError):
    """The case is already assigned to that agent."""

    rule = "agent-already-assigned"


class CustomerNotesAreCustomerVisible(DomainError):
    """Customer admins add only notes the customer can see."""

    rule = "customer-notes-are-customer-visible"


class SatisfactionAlreadyRecorded(DomainError):
    """A case gets one satisfaction answer."""

    rule = "satisfaction-recorded-once"


class SatisfactionBeforeResolution(DomainError):
    """Satisfaction is asked only after the case was resolved."""

    rule = "satisfaction-after-resolution"


class SatisfactionScoreOutOfRange(DomainError):
    """A satisfaction score is a whole number from 1 to 5."""

    rule = "satisfaction-score-1-to-5"


class SatisfactionByCustomerOrSystem(DomainError):
    """Satisfaction comes from the customer's admin or the survey system (or its import)."""

    rule = "satisfaction-from-customer-admin-or-system"
