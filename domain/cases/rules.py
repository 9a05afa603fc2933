"""The checks a service request runs before it records anything (policy §1, §2, §4).

Pure functions raising the refusals of `domain.cases.errors`; the aggregate calls them
from its command methods, never from the methods that apply events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from domain.cases import errors
from domain.cases.state import NoteVisibility, UnresponsiveRecord
from domain.errors import require_time_order
from domain.organisations import Organisation
from domain.policy import ClosureReasonSpec, Policy
from domain.values import Actor, Channel, Role, Severity


def check_opening(
    *,
    organisation: Organisation,
    requester_id: str,
    title: str,
    contact_phone: str,
    contact_email: str,
    by: Actor,
    at: datetime,
    caller_phone: str | None,
    verification_id: UUID | None,
    partner_contact_acknowledged: bool,
) -> None:
    """Refuse a request that §1 and §2 do not allow to be opened."""
    if not organisation.is_admin(requester_id):
        raise errors.RequesterNotAdmin(
            f"{requester_id} is not an administrator of {organisation.name}. Only customer "
            "administrators can open service requests: ask your organisation's "
            "administrator, or use the community forums."
        )
    admin_themself = (
        by.role is Role.CUSTOMER_ADMIN
        and by.principal_id == requester_id
        and by.channel in (Channel.ONLINE, Channel.PHONE)
    )
    staff_by_phone = by.is_support_staff and by.channel is Channel.PHONE
    if not (admin_themself or staff_by_phone):
        raise errors.OpenerNotAllowed(
            f"{by.principal_id} ({by.role.value}, {by.channel.value}) cannot open a request "
            f"for {requester_id}: the administrator opens it online or by phone, or an "
            "agent or supervisor opens it for them during a phone call."
        )
    if by.channel is Channel.PHONE:
        if not caller_phone:
            raise errors.CallerPhoneRequired("Record the phone number the caller is using.")
        registered = organisation.has_registered_phone(caller_phone)
        if not registered:
            organisation.require_unused_verification(verification_id)
        if not registered and not organisation.is_caller_verified(
            verification_id, caller_phone, at
        ):
            raise errors.CallerNotVerified(
                f"{caller_phone} is not registered for {organisation.name}. Send a one-time "
                "code to a registered phone or e-mail and have the caller read it back "
                "before opening the request."
            )
    if organisation.bought_through_partner and not partner_contact_acknowledged:
        raise errors.PartnerContactNotAcknowledged(
            f"{organisation.name} bought its subscription through {organisation.partner_name}; "
            f"show the partner's contact ({organisation.partner_contact}) first. The "
            "administrator may still choose to open a request with us directly: send "
            "partner_contact_acknowledged true.",
            partner_name=organisation.partner_name or "",
            partner_contact=organisation.partner_contact or "",
        )
    if not title.strip():
        raise errors.TitleRequired("A service request needs a title saying what is wrong.")
    require_text(contact_phone, "a contact phone number")
    require_text(contact_email, "a contact e-mail address")


def require_text(text: str, what: str) -> None:
    """Refuse an empty or blank required text, naming what is missing."""
    if not text.strip():
        raise errors.RequiredTextMissing(f"Please give {what}.")


def check_resolution(by: Actor, resolution: str, *, responded: bool) -> None:
    """Refuse a resolution by anyone but staff, before a first response, or without text."""
    require_staff(by, "resolve a case")
    if not responded:
        raise errors.ResolveNeedsFirstResponse("Respond to the customer before resolving the case.")
    require_text(resolution, "the resolution")


def check_incident_link(
    incident_id: UUID, linked: UUID | None, by: Actor, *, opening: bool
) -> None:
    """Refuse a link by anyone but staff after the opening, or one that changes nothing."""
    if not opening:
        require_staff(by, "link a case to a service incident")
    if incident_id == linked:
        raise errors.CaseAlreadyLinkedToIncident(
            f"The case is already linked to incident {incident_id}."
        )


def require_staff(by: Actor, action: str) -> None:
    """Refuse anyone but a support agent or supervisor."""
    if not by.is_support_staff:
        raise errors.SupportStaffOnly(
            f"Only support agents and supervisors can {action}; "
            f"{by.principal_id} is {by.role.value}."
        )


def require_own_organisation(organisation: Organisation, organisation_id: UUID) -> None:
    """Refuse an organisation other than the case's own."""
    if organisation.id != organisation_id:
        raise errors.NotOrganisationsCase(
            f"This case belongs to another organisation than {organisation.name}."
        )


def is_organisation_admin(by: Actor, organisation: Organisation) -> bool:
    """True when `by` acts as a customer admin of `organisation`."""
    return by.role is Role.CUSTOMER_ADMIN and organisation.is_admin(by.principal_id)


def require_staff_or_admin(by: Actor, organisation: Organisation, action: str) -> None:
    """Refuse anyone but support staff or an admin of the case's organisation."""
    if not (by.is_support_staff or is_organisation_admin(by, organisation)):
        raise errors.StaffOrOrganisationAdminOnly(
            f"Only support staff or an administrator of {organisation.name} can {action}."
        )


def check_escalation(current: Severity, severity: Severity, reason: str) -> None:
    """Refuse an escalation that does not raise the severity or gives no reason."""
    if not severity.is_more_severe_than(current):
        raise errors.EscalationMustRaise(
            f"Escalating needs a severity above {current.value}, not {severity.value}."
        )
    require_text(reason, "a reason for the escalation")


def check_downgrade(
    current: Severity, severity: Severity, reason: str, evidence: UnresponsiveRecord | None
) -> UnresponsiveRecord:
    """Refuse a downgrade that does not lower the severity or lacks evidence (§4)."""
    if not current.is_more_severe_than(severity):
        raise errors.DowngradeMustLower(
            f"Downgrading needs a severity below {current.value}, not {severity.value}."
        )
    require_text(reason, "a reason for the downgrade")
    if evidence is None:
        raise errors.NoStandingUnresponsiveRecord(
            "Downgrade only after recording that the customer did not respond; each such "
            "record allows one downgrade, and a reply from the customer clears it."
        )
    return evidence


def check_unresponsive(requested: str, asked_at: datetime, policy: Policy, at: datetime) -> None:
    """Refuse to call the customer unresponsive before the policy's wait is over."""
    require_text(requested, "what the customer was asked for")
    require_time_order(asked_at)
    if asked_at > at:
        raise errors.UnresponsiveAskedInFuture(
            f"The customer was asked at {asked_at.isoformat()}, after {at.isoformat()}."
        )
    if at - asked_at < unresponsive_wait(policy):
        raise errors.CustomerNotYetUnresponsive(
            f"The customer was asked {at - asked_at} ago; policy {policy.version} gives "
            f"them {policy.downgrade.unresponsive_after.describe()} to respond."
        )


def check_assignment(agent_id: str, assigned: str | None, by: Actor) -> None:
    """Refuse an assignment that is not self-assignment by an agent or by a supervisor."""
    require_staff(by, "assign a case")
    require_text(agent_id, "the agent to assign")
    if by.role is Role.AGENT and agent_id != by.principal_id:
        raise errors.AgentsSelfAssignOnly(
            f"Agents can assign a case only to themselves; ask a supervisor to assign it "
            f"to {agent_id}."
        )
    if agent_id == assigned:
        raise errors.AgentAlreadyAssigned(f"The case is already assigned to {agent_id}.")


def check_note(
    text: str, visibility: NoteVisibility, organisation: Organisation, by: Actor
) -> None:
    """Refuse a note from an outsider, or an internal note from the customer."""
    require_staff_or_admin(by, organisation, "add a note")
    if not by.is_support_staff and visibility is not NoteVisibility.CUSTOMER:
        raise errors.CustomerNotesAreCustomerVisible(
            "Customer administrators add notes that support and the customer both see."
        )
    require_text(text, "the note's text")


def check_satisfaction(
    score: int,
    organisation: Organisation,
    by: Actor,
    *,
    already_recorded: bool,
    resolved_before: bool,
) -> None:
    """Refuse a second answer, an early one, an outsider's, or a score outside 1-5."""
    # Survey answers arrive from the survey system itself or imported by a platform admin.
    survey_import = by.role in (Role.SYSTEM, Role.ADMIN)
    if not (survey_import or is_organisation_admin(by, organisation)):
        raise errors.SatisfactionByCustomerOrSystem(
            f"Satisfaction comes from an administrator of {organisation.name} or the survey system."
        )
    if already_recorded:
        raise errors.SatisfactionAlreadyRecorded("This case already has a satisfaction answer.")
    if not resolved_before:
        raise errors.SatisfactionBeforeResolution(
            "Satisfaction is recorded only after the case was resolved."
        )
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise errors.SatisfactionScoreOutOfRange(
            f"A satisfaction score is a whole number from 1 to 5, not {score!r}."
        )


def unresponsive_wait(policy: Policy) -> timedelta:
    """How long the customer must leave a question unanswered before a downgrade."""
    spec = policy.downgrade.unresponsive_after
    if spec.hours is not None:
        return timedelta(hours=spec.hours)
    if spec.minutes is not None:
        return timedelta(minutes=spec.minutes)
    # Business days need a calendar, and the case has none of its own before a
    # severity is set; the policy file must say hours or minutes here.
    raise errors.UnsupportedWaitingPeriod(
        f"Policy {policy.version} sets the unresponsive wait in business days; "
        "it must be in hours or minutes."
    )


def closure_reason(policy: Policy, reason: str) -> ClosureReasonSpec:
    """The policy's entry for a closure reason; refused if the policy has no such code."""
    spec = policy.closure_reason(reason)
    if spec is None:
        known = ", ".join(r.value for r in policy.closure_reasons) or "none"
        raise errors.ClosureReasonUnknown(
            f"Policy {policy.version} has no closure reason {reason!r} (known: {known})."
        )
    return spec
