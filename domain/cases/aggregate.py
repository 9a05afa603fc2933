"""The ServiceRequest aggregate: one admin's request, from opening to satisfaction.

It stays one module because it holds one command method per action the policy allows.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.cases import errors, events, opening, rules
from domain.cases.state import (
    INITIAL_ASSESSMENT,
    CaseStatus,
    Note,
    NoteVisibility,
    Satisfaction,
    SeverityChange,
    UnresponsiveRecord,
)
from domain.clocked import ClockedAggregate
from domain.errors import require_time_order
from domain.organisations import Organisation
from domain.policy import Policy
from domain.policy.rules import check_severity_allowed, check_severity_for_category
from domain.sla.waiting import WaitingObservation
from domain.values import Actor, Agreement, Category, ContactKind, Role, Severity


class ServiceRequest(ClockedAggregate):
    """A customer admin's request for help, worked by support under a policy version.

    Each public command checks the rules (raising a `DomainError`, recording nothing),
    then triggers one explicit event from `domain.cases.events`. The `@event` method
    named after that event only changes state, taking just the attributes it needs; it
    runs when triggered and on replay, where no rule is re-checked. Time and ids come in.
    """

    Opened = events.Opened
    SeverityAssigned = events.SeverityAssigned
    Escalated = events.Escalated
    CustomerUnresponsive = events.CustomerUnresponsive
    Downgraded = events.Downgraded
    Responded = events.Responded
    AgentAssigned = events.AgentAssigned
    NoteAdded = events.NoteAdded
    Resolved = events.Resolved
    Reopened = events.Reopened
    SurveyInvited = events.SurveyInvited
    SatisfactionRecorded = events.SatisfactionRecorded
    LinkedToIncident = events.LinkedToIncident
    PersonalDataErased = events.PersonalDataErased  # recorded by domain.erasure

    @classmethod
    def open(
        cls,
        *,
        organisation: Organisation,
        requester_id: str,
        category: Category,
        title: str,
        description: str,
        contact_phone: str,
        contact_email: str,
        preferred_contact: ContactKind,
        policy: Policy,
        by: Actor,
        at: datetime,
        caller_phone: str | None = None,
        verification_id: UUID | None = None,
        partner_contact_acknowledged: bool = False,
        case_id: UUID | None = None,
        waiting: dict[str, WaitingObservation] | None = None,
        support_line: str | None = None,
    ) -> ServiceRequest:
        """Open a request for an organisation's admin; it starts awaiting assessment."""
        require_time_order(at)
        rules.check_opening(
            organisation=organisation,
            requester_id=requester_id,
            title=title,
            contact_phone=contact_phone,
            contact_email=contact_email,
            by=by,
            at=at,
            caller_phone=caller_phone,
            verification_id=verification_id,
            partner_contact_acknowledged=partner_contact_acknowledged,
        )
        case = cls._create(
            cls.Opened,
            id=case_id,
            timestamp=at,
            organisation_id=organisation.id,
            requester_id=requester_id,
            category=Category(category),
            title=title.strip(),
            description=description,
            contact_phone=contact_phone.strip(),
            contact_email=contact_email.strip(),
            preferred_contact=ContactKind(preferred_contact),
            caller_phone=caller_phone,
            verification_id=verification_id,
            partner_contact_acknowledged=partner_contact_acknowledged,
            **opening.recorded_facts(organisation, policy, Category(category), at, waiting),
            support_line=opening.checked_line(policy, by, support_line),
            policy_version=policy.version,
            by=by,
            at=at,
        )
        organisation.use_caller_verification(verification_id, caller_phone, case.id, by=by, at=at)
        return case

    @event(Opened)
    def __init__(
        self,
        *,
        organisation_id: UUID,
        requester_id: str,
        category: str,
        title: str,
        description: str,
        contact_phone: str,
        contact_email: str,
        preferred_contact: str,
        caller_phone: str | None,
        policy_version: str,
        by: Actor,
        at: datetime,
    ) -> None:
        self.organisation_id = organisation_id
        self.requester_id = requester_id
        self.category = Category(category)
        self.title = title
        self.description = description
        self.contact_phone = contact_phone
        self.contact_email = contact_email
        self.preferred_contact = ContactKind(preferred_contact)
        self.caller_phone = caller_phone
        self.opened_by = by
        self.opened_at = at
        self.policy_version = policy_version  # the version in force at opening
        self.status = CaseStatus.AWAITING_ASSESSMENT
        self.severity: Severity | None = None
        self.severity_history: list[SeverityChange] = []
        self.first_responded_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.closure_reason: str | None = None  # why the current resolution closed it
        self.times_resolved = 0
        self.assigned_agent: str | None = None
        self.notes: list[Note] = []
        self.unresponsive_records: list[UnresponsiveRecord] = []
        self.satisfaction: Satisfaction | None = None
        self.incident_id: UUID | None = None  # the service incident it is about

    @property
    def standing_unresponsive(self) -> UnresponsiveRecord | None:
        """The latest unused record of the customer not responding, if any."""
        return next((r for r in reversed(self.unresponsive_records) if r.standing), None)

    def assign_severity(
        self, severity: Severity, *, agreement: Agreement, policy: Policy, by: Actor, at: datetime
    ) -> None:
        """Make the initial severity assessment (support staff, once)."""
        self._require_workable(at)
        rules.require_staff(by, "assess a severity")
        if self.severity is not None:
            raise errors.SeverityAlreadyAssigned(
                f"The case is already severity {self.severity.value}; escalate or downgrade it."
            )
        check_severity_allowed(policy, self.category, Severity(severity), Agreement(agreement))
        self.trigger_event(
            self.SeverityAssigned,
            severity=Severity(severity),
            agreement=Agreement(agreement),
            policy_version=policy.version,
            by=by,
            at=at,
        )

    @event(SeverityAssigned)
    def _severity_assigned(self, severity: str, at: datetime) -> None:
        self._change_severity(at, severity, INITIAL_ASSESSMENT)
        self.status = CaseStatus.OPEN

    def escalate(
        self,
        severity: Severity,
        *,
        agreement: Agreement,
        policy: Policy,
        reason: str,
        by: Actor,
        at: datetime,
    ) -> None:
        """Raise the severity (support staff)."""
        current = self._require_assessed(at, by, "escalate a case")
        rules.check_escalation(current, Severity(severity), reason)
        check_severity_allowed(policy, self.category, Severity(severity), Agreement(agreement))
        self.trigger_event(
            self.Escalated,
            severity=Severity(severity),
            previous_severity=current,
            agreement=Agreement(agreement),
            reason=reason,
            policy_version=policy.version,
            by=by,
            at=at,
        )

    @event(Escalated)
    def _escalated(self, severity: str, reason: str, at: datetime) -> None:
        self._change_severity(at, severity, reason)

    def record_customer_unresponsive(
        self, *, requested: str, asked_at: datetime, policy: Policy, by: Actor, at: datetime
    ) -> None:
        """Record that the customer left a request for information unanswered (§4)."""
        self._require_workable(at)
        rules.require_staff(by, "record that the customer is unresponsive")
        rules.check_unresponsive(requested, asked_at, policy, at)
        self.trigger_event(
            self.CustomerUnresponsive,
            requested=requested,
            asked_at=asked_at,
            policy_version=policy.version,
            by=by,
            at=at,
        )

    @event(CustomerUnresponsive)
    def _customer_unresponsive(self, requested: str, asked_at: datetime, at: datetime) -> None:
        # The event being applied becomes the next version; a downgrade cites it by that.
        record = UnresponsiveRecord(self.version + 1, requested, asked_at, at, standing=True)
        self.unresponsive_records.append(record)

    def downgrade(
        self, severity: Severity, *, policy: Policy, reason: str, by: Actor, at: datetime
    ) -> None:
        """Lower the severity because the customer did not respond (support staff, §4)."""
        current = self._require_assessed(at, by, "downgrade a case")
        evidence = rules.check_downgrade(
            current, Severity(severity), reason, self.standing_unresponsive
        )
        check_severity_for_category(policy, self.category, Severity(severity))
        self.trigger_event(
            self.Downgraded,
            severity=Severity(severity),
            previous_severity=current,
            reason=reason,
            evidence_version=evidence.version,
            evidence_requested=evidence.requested,
            evidence_asked_at=evidence.asked_at,
            policy_version=policy.version,
            by=by,
            at=at,
        )

    @event(Downgraded)
    def _downgraded(self, severity: str, reason: str, evidence_version: int, at: datetime) -> None:
        self._change_severity(at, severity, reason)
        self.unresponsive_records = [
            r._replace(standing=False) if r.version == evidence_version else r
            for r in self.unresponsive_records
        ]

    def respond(
        self,
        *,
        message_summary: str,
        policy: Policy,
        by: Actor,
        at: datetime,
        via: ContactKind | None = None,
    ) -> None:
        """Record a response (by default the preferred way); the first stops the response clock."""
        self._require_assessed(at, by, "respond to a case")
        rules.require_text(message_summary, "a summary of the response")
        self.trigger_event(
            self.Responded,
            message_summary=message_summary,
            first_response=self.first_responded_at is None,
            via=(via or self.preferred_contact).value,
            policy_version=policy.version,
            by=by,
            at=at,
        )

    @event(Responded)
    def _responded(self, first_response: bool, at: datetime) -> None:
        if first_response:
            self.first_responded_at = at

    def assign_agent(self, agent_id: str, *, by: Actor, at: datetime) -> None:
        """Assign the case: agents take it themselves, supervisors give it to anyone."""
        self._require_workable(at)
        rules.check_assignment(agent_id, self.assigned_agent, by)
        self.trigger_event(self.AgentAssigned, agent_id=agent_id, by=by, at=at)

    @event(AgentAssigned)
    def _agent_assigned(self, agent_id: str) -> None:
        self.assigned_agent = agent_id

    def add_note(
        self,
        text: str,
        *,
        visibility: NoteVisibility,
        organisation: Organisation,
        by: Actor,
        at: datetime,
    ) -> None:
        """Add a note; a customer admin's note is customer-visible and counts as a reply."""
        self._require_workable(at)
        rules.require_own_organisation(organisation, self.organisation_id)
        rules.check_note(text, NoteVisibility(visibility), organisation, by)
        self.trigger_event(
            self.NoteAdded, text=text, visibility=NoteVisibility(visibility), by=by, at=at
        )

    @event(NoteAdded)
    def _note_added(self, text: str, visibility: str, by: Actor, at: datetime) -> None:
        self.notes.append(Note(at, by, NoteVisibility(visibility), text))
        if by.role is Role.CUSTOMER_ADMIN:
            # The customer replied: earlier silence no longer justifies a downgrade.
            self.unresponsive_records = [
                r._replace(standing=False) for r in self.unresponsive_records
            ]

    def resolve(
        self, *, reason: str, resolution: str, policy: Policy, by: Actor, at: datetime
    ) -> None:
        """Resolve the case for a reason of the policy (support staff, after a response)."""
        self._require_workable(at)
        rules.check_resolution(by, resolution, responded=self.first_responded_at is not None)
        self.trigger_event(
            self.Resolved,
            resolution=resolution,
            reason=reason,
            out_of_scope=rules.closure_reason(policy, reason).out_of_scope,
            policy_version=policy.version,
            by=by,
            at=at,
        )
        if self.satisfaction is None:  # one answer per case: invited until it is given
            self.trigger_event(self.SurveyInvited, to=self.preferred_contact.value, by=by, at=at)

    @event(Resolved)
    def _resolved(self, reason: str, at: datetime) -> None:
        self.status = CaseStatus.RESOLVED
        self.resolved_at = at
        self.closure_reason = reason
        self.times_resolved += 1

    def reopen(
        self, *, reason: str, policy: Policy, organisation: Organisation, by: Actor, at: datetime
    ) -> None:
        """Reopen a resolved case (the organisation's admin or support staff)."""
        require_time_order(at, after=self.modified_on)
        rules.require_own_organisation(organisation, self.organisation_id)
        rules.require_staff_or_admin(by, organisation, "reopen a case")
        if self.status is not CaseStatus.RESOLVED:
            raise errors.CaseNotResolved("Only a resolved case can be reopened.")
        rules.require_text(reason, "a reason for reopening")
        self.trigger_event(
            self.Reopened, reason=reason, policy_version=policy.version, by=by, at=at
        )

    @event(Reopened)
    def _reopened(self) -> None:
        self.status = CaseStatus.OPEN
        self.resolved_at = None
        self.closure_reason = None

    def record_satisfaction(
        self,
        score: int,
        *,
        comment: str | None,
        organisation: Organisation,
        by: Actor,
        at: datetime,
    ) -> None:
        """Record the customer's one satisfaction answer, after a resolution (§6)."""
        require_time_order(at, after=self.modified_on)
        rules.require_own_organisation(organisation, self.organisation_id)
        rules.check_satisfaction(
            score,
            organisation,
            by,
            already_recorded=self.satisfaction is not None,
            resolved_before=self.times_resolved > 0,
        )
        self.trigger_event(self.SatisfactionRecorded, score=score, comment=comment, by=by, at=at)

    @event(SatisfactionRecorded)
    def _satisfaction_recorded(self, score: int, comment: str | None, at: datetime) -> None:
        self.satisfaction = Satisfaction(score, comment, at)

    def link_to_incident(
        self, incident_id: UUID, *, by: Actor, at: datetime, opening: bool = False
    ) -> None:
        """Link the case to a service incident: as it opens, or later (support staff)."""
        require_time_order(at, after=self.modified_on)
        rules.check_incident_link(incident_id, self.incident_id, by, opening=opening)
        self.trigger_event(self.LinkedToIncident, incident_id=incident_id, by=by, at=at)

    @event(LinkedToIncident)
    def _linked_to_incident(self, incident_id: UUID) -> None:
        self.incident_id = incident_id

    def _require_workable(self, at: datetime) -> None:
        require_time_order(at, after=self.modified_on)
        if self.status is CaseStatus.RESOLVED:
            raise errors.CaseIsClosed(
                "The case is resolved: it can only be reopened or given a satisfaction answer."
            )

    def _require_assessed(self, at: datetime, by: Actor, action: str) -> Severity:
        self._require_workable(at)
        rules.require_staff(by, action)
        if self.severity is None:
            raise errors.SeverityNotAssessed(f"Assess the case's severity before you {action}.")
        return self.severity

    def _change_severity(self, at: datetime, severity: str, reason: str) -> None:
        self.severity = Severity(severity)
        self.severity_history.append(SeverityChange(at, self.severity, reason))
