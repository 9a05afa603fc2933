"""One handler per command: load what it needs, call the aggregate, return it.

Handlers never save; the application saves what they return, together with the other
commands of the same batch, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from casebook import commands as c
from domain.cases import ServiceRequest
from domain.erasure import erase_personal_data
from domain.incidents import IncidentAnswer, ServiceIncident, incident_to_link
from domain.organisations import Organisation
from domain.policy import Policy
from domain.values import Actor

# What a command writes: one aggregate of one of these kinds.
Written = Organisation | ServiceRequest | ServiceIncident


class Loader:
    """What handlers read: aggregates by id, each failing with a not-found error.

    `consulted=False` marks a read whose mutable state the rules will not look at (a
    staff note checks only the organisation's id): the save need not verify that it is
    still current. `incidents_in_force(at)` are the incidents an opening at `at` shows
    first, each consulted: one closed meanwhile makes the save conflict and retry.
    """

    def __init__(
        self,
        case: Callable[[UUID], ServiceRequest],
        organisation: Callable[[UUID, bool], Organisation],
        incident: Callable[[UUID, bool], ServiceIncident],
        incidents_in_force: Callable[[datetime], list[ServiceIncident]],
    ) -> None:
        self.case = case
        self._organisation = organisation
        self._incident = incident
        self.incidents_in_force = incidents_in_force

    def organisation(self, organisation_id: UUID, *, consulted: bool = True) -> Organisation:
        """The organisation, as read for a rule (or only for its id)."""
        return self._organisation(organisation_id, consulted)

    def incident(self, incident_id: UUID, *, consulted: bool = True) -> ServiceIncident:
        """The incident, as read for a rule (or only for its id)."""
        return self._incident(incident_id, consulted)


@dataclass(frozen=True)
class Work:
    """Everything a handler may use besides the command."""

    load: Loader
    policy: Policy
    by: Actor
    at: Callable[[datetime | None], datetime]  # no earlier than the given last change


def target_id(command: c.Command) -> UUID | None:
    """The aggregate a command writes; None when it creates one with a fresh id."""
    if isinstance(command, c.RegisterOrganisation):
        return command.organisation_id
    if isinstance(command, c.OpenRequest):
        return command.case_id
    if isinstance(command, c.OrganisationCommand):
        return command.organisation_id
    if isinstance(command, c.IncidentCommand):
        return command.incident_id
    return command.case_id


def handle(command: c.Command, work: Work) -> Written:
    """Run `command`; return the aggregate holding its new events."""
    if isinstance(command, c.OrganisationCommand):
        return _organisation_command(command, work)
    if isinstance(command, c.IncidentCommand):
        return _incident_command(command, work)
    return _case_command(command, work)


def _incident_command(command: c.IncidentCommand, work: Work) -> ServiceIncident:
    if isinstance(command, c.DeclareIncident):
        at = work.at(None)
        return ServiceIncident.declare(
            services=command.services,
            categories=command.categories,
            summary=command.summary,
            started_at=command.started_at or at,
            incident_id=command.incident_id,
            by=work.by,
            at=at,
        )
    incident = work.load.incident(command.incident_id)
    at = work.at(incident.modified_on)
    if isinstance(command, c.UpdateIncident):
        incident.update(
            summary=command.summary,
            services=command.services,
            categories=command.categories,
            by=work.by,
            at=at,
        )
    else:
        incident.close(ended_at=command.ended_at or at, by=work.by, at=at)
    return incident


def _incident_of_opening(command: c.OpenRequest, work: Work, at: datetime) -> UUID | None:
    """The incident a new request is filed about (policy §1: incidents are shown first)."""
    answer = IncidentAnswer(command.incident_acknowledged, command.incident_unrelated)
    linked = incident_to_link(
        work.load.incidents_in_force(at),
        category=command.category,
        service=command.service,
        answer=answer,
        acknowledged=work.load.incident(answer.acknowledged) if answer.acknowledged else None,
    )
    return linked.id if linked is not None else None


def _organisation_command(command: c.OrganisationCommand, work: Work) -> Organisation:
    by = work.by
    if isinstance(command, c.RegisterOrganisation):
        # The command's fields are `register`'s keyword arguments, one for one.
        return Organisation.register(**vars(command), by=by, at=work.at(None))
    org = work.load.organisation(command.organisation_id)
    at = work.at(org.modified_on)
    match command:
        case c.AddAdmin():
            org.add_admin(command.principal_id, by=by, at=at)
        case c.RemoveAdmin():
            org.remove_admin(command.principal_id, by=by, at=at)
        case c.RegisterContact():
            org.register_contact(command.kind, command.value, by=by, at=at)
        case c.RemoveContact():
            org.remove_contact(command.kind, command.value, by=by, at=at)
        case c.ChangeAgreement():
            org.change_agreement(command.agreement, by=by, at=at)
        case c.ChangePurchaseChannel():
            org.change_purchase_channel(
                command.purchase_channel,
                partner_name=command.partner_name,
                partner_contact=command.partner_contact,
                by=by,
                at=at,
            )
        case c.ChangeLocale():
            org.change_locale(country=command.country, timezone=command.timezone, by=by, at=at)
        case c.RequestCallerVerification():
            org.request_caller_verification(
                command.verification_id,
                caller_phone=command.caller_phone,
                code=command.code,
                send_to=command.send_to,
                rules=work.policy.caller_verification,
                by=by,
                at=at,
            )
        case c.ConfirmCallerVerification():
            org.confirm_caller_verification(command.verification_id, command.code, by=by, at=at)
        case c.EraseOrganisationData():
            erase_personal_data(org, subject=None, reason=command.reason, by=by, at=at)
    return org


def _case_command(command: c.CaseCommand, work: Work) -> ServiceRequest:
    by, policy = work.by, work.policy
    if isinstance(command, c.OpenRequest):
        opened = ServiceRequest.open(
            organisation=work.load.organisation(command.organisation_id),
            requester_id=command.requester_id,
            category=command.category,
            title=command.title,
            description=command.description,
            contact_phone=command.contact_phone,
            contact_email=command.contact_email,
            preferred_contact=command.preferred_contact,
            caller_phone=command.caller_phone,
            verification_id=command.verification_id,
            partner_contact_acknowledged=command.partner_contact_acknowledged,
            case_id=command.case_id,
            waiting=command.waiting,
            support_line=command.support_line,
            policy=policy,
            by=by,
            at=work.at(None),
        )
        # Checked after the opening's own rules: nothing is shown to who may not file.
        incident_id = _incident_of_opening(command, work, opened.opened_at)
        if incident_id is not None:
            opened.link_to_incident(incident_id, by=by, at=opened.opened_at, opening=True)
        return opened
    case = work.load.case(command.case_id)
    at = work.at(case.modified_on)
    match command:
        case c.AssignSeverity():
            org = work.load.organisation(case.organisation_id)
            case.assign_severity(
                command.severity, agreement=org.agreement, policy=policy, by=by, at=at
            )
        case c.EscalateSeverity():
            org = work.load.organisation(case.organisation_id)
            case.escalate(
                command.severity,
                agreement=org.agreement,
                policy=policy,
                reason=command.reason,
                by=by,
                at=at,
            )
        case c.RecordCustomerUnresponsive():
            case.record_customer_unresponsive(
                requested=command.requested, asked_at=command.asked_at, policy=policy, by=by, at=at
            )
        case c.DowngradeSeverity():
            case.downgrade(command.severity, policy=policy, reason=command.reason, by=by, at=at)
        case c.Respond():
            case.respond(
                message_summary=command.message_summary,
                policy=policy,
                by=by,
                at=at,
                via=command.via,
            )
        case c.AssignAgent():
            case.assign_agent(command.agent_id, by=by, at=at)
        case c.AddNote():
            # Staff may note any case: only a customer admin's note depends on the admins.
            org = work.load.organisation(case.organisation_id, consulted=not by.is_support_staff)
            case.add_note(
                command.text, visibility=command.visibility, organisation=org, by=by, at=at
            )
        case c.Resolve():
            case.resolve(
                reason=command.reason,
                resolution=command.resolution,
                policy=policy,
                by=by,
                at=at,
            )
        case c.Reopen():
            org = work.load.organisation(case.organisation_id)
            case.reopen(reason=command.reason, policy=policy, organisation=org, by=by, at=at)
        case c.EraseCaseData():
            erase_personal_data(case, subject=command.subject, reason=command.reason, by=by, at=at)
        case c.LinkCaseToIncident():
            incident = work.load.incident(command.incident_id, consulted=False)
            case.link_to_incident(incident.id, by=by, at=at)
        case c.RecordSatisfaction():
            org = work.load.organisation(case.organisation_id)
            case.record_satisfaction(
                command.score, comment=command.comment, organisation=org, by=by, at=at
            )
    return case
