"""The ServiceRequest aggregate once open: severity, downgrades, work and closing (§4-§6)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from casebook.policy_source import default_policy_text
from domain.cases import CaseStatus, NoteVisibility, ServiceRequest
from domain.cases import errors as err
from domain.cases import events as case_events
from domain.organisations import Organisation
from domain.policy import Policy, parse_policy
from domain.values import Actor, Agreement, Category, Channel, ClosureReason, Role, Severity
from tests.unit.conftest import (
    ADA,
    AGENT,
    OTHER_AGENT,
    SUPERVISOR,
    SURVEY,
    USER,
    Clock,
    MakeOrganisation,
    OpenCase,
    record_unresponsive,
    refused,
)

CUSTOMER, INTERNAL = NoteVisibility.CUSTOMER, NoteVisibility.INTERNAL

# -- severity (§4) -----------------------------------------------------------------------


def test_billing_requests_cannot_be_severity_a(
    open_case: OpenCase, policy: Policy, clock: Clock
) -> None:
    billing = open_case(category=Category.BILLING)
    with refused(err.SeverityNotForCategory, "severity-a-only-for-technical", "technical"):
        billing.assign_severity(
            Severity.A, agreement=Agreement.ADVANCED, policy=policy, by=AGENT, at=clock.tick()
        )


def test_a_category_is_capped_at_its_maximum_severity(open_case: OpenCase, clock: Clock) -> None:
    # Without the "A only for technical" rule, the billing cap (B) is what refuses A.
    policy = parse_policy(default_policy_text().replace('only_categories = ["technical"]', ""))
    billing = open_case(category=Category.BILLING, policy=policy)
    with refused(err.SeverityAboveCategoryCap, "category-severity-cap", "capped at severity B"):
        billing.assign_severity(
            Severity.A, agreement=Agreement.ADVANCED, policy=policy, by=AGENT, at=clock.tick()
        )


def test_severity_a_requires_an_advanced_agreement(
    case: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    with refused(err.SeverityNeedsAgreement, "severity-a-requires-advanced-agreement", "advanced"):
        case.assign_severity(
            Severity.A, agreement=Agreement.STANDARD, policy=policy, by=AGENT, at=clock.tick()
        )
    case.assign_severity(
        Severity.A, agreement=Agreement.ADVANCED, policy=policy, by=AGENT, at=clock.tick()
    )
    assert case.severity is Severity.A and case.status is CaseStatus.OPEN


def test_only_support_staff_assess_severity(
    case: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    with refused(err.SupportStaffOnly, "support-staff-only", "assess a severity"):
        case.assign_severity(
            Severity.C, agreement=Agreement.STANDARD, policy=policy, by=ADA, at=clock.tick()
        )


def test_the_initial_severity_is_assigned_once(
    assessed: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    with refused(err.SeverityAlreadyAssigned, "severity-assigned-once", "escalate or downgrade"):
        assessed.assign_severity(
            Severity.C, agreement=Agreement.STANDARD, policy=policy, by=AGENT, at=clock.tick()
        )


def test_an_escalation_raises_the_severity_within_the_rules(
    assessed: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    def escalate(severity: Severity, agreement: Agreement) -> None:
        assessed.escalate(
            severity,
            agreement=agreement,
            policy=policy,
            reason="All down",
            by=AGENT,
            at=clock.tick(),
        )

    with refused(err.EscalationMustRaise, "escalation-raises-severity", "above B"):
        escalate(Severity.C, Agreement.ADVANCED)
    with refused(err.SeverityNeedsAgreement, "severity-a-requires-advanced-agreement", "advanced"):
        escalate(Severity.A, Agreement.STANDARD)
    escalate(Severity.A, Agreement.ADVANCED)
    assert [(c.severity, c.reason) for c in assessed.severity_history] == [
        (Severity.B, "initial assessment"),
        (Severity.A, "All down"),
    ]


# -- unresponsive customer and downgrade (§4) ---------------------------------------------


def test_the_customer_is_unresponsive_only_after_the_policy_wait(
    assessed: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    asked_at = clock.tick()

    def record(at: float, asked: float = 0) -> None:
        assessed.record_customer_unresponsive(
            requested="Message trace",
            asked_at=asked_at + timedelta(hours=asked),
            policy=policy,
            by=AGENT,
            at=asked_at + timedelta(hours=at),
        )

    with refused(err.CustomerNotYetUnresponsive, "unresponsive-after-waiting-period", "24 hour"):
        record(at=23)
    with refused(err.UnresponsiveAskedInFuture, "asked-at-not-in-future", "after"):
        record(at=25, asked=26)
    record(at=25)
    assert assessed.standing_unresponsive is not None


def test_a_wait_in_business_days_is_refused(assessed: ServiceRequest, clock: Clock) -> None:
    policy = parse_policy(default_policy_text().replace("{ hours = 24 }", "{ business_days = 1 }"))
    with refused(err.UnsupportedWaitingPeriod, "unresponsive-wait-in-clock-time", "business days"):
        record_unresponsive(assessed, policy, clock)


def test_a_downgrade_needs_a_standing_unresponsive_record(
    assessed: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    def downgrade() -> None:
        assessed.downgrade(Severity.C, policy=policy, reason="No trace", by=AGENT, at=clock.tick())

    rule = "downgrade-needs-unresponsive-customer"
    with refused(err.NoStandingUnresponsiveRecord, rule, "did not respond"):
        downgrade()
    record_unresponsive(assessed, policy, clock)
    downgrade()
    downgraded = assessed.collect_events()[-1]
    assert isinstance(downgraded, case_events.Downgraded)
    assert (downgraded.evidence_version, downgraded.evidence_requested) == (3, "Message trace")
    assert assessed.severity is Severity.C and assessed.standing_unresponsive is None


def test_one_unresponsive_record_allows_one_downgrade(
    case: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    case.assign_severity(
        Severity.A, agreement=Agreement.ADVANCED, policy=policy, by=AGENT, at=clock.tick()
    )
    record_unresponsive(case, policy, clock)
    case.downgrade(Severity.B, policy=policy, reason="No trace", by=AGENT, at=clock.tick())
    rule = "downgrade-needs-unresponsive-customer"
    with refused(err.NoStandingUnresponsiveRecord, rule, "one downgrade"):
        case.downgrade(Severity.C, policy=policy, reason="Still none", by=AGENT, at=clock.tick())


def test_a_customer_note_clears_the_unresponsive_record(
    assessed: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    record_unresponsive(assessed, policy, clock)
    assessed.add_note(
        "Trace attached", visibility=CUSTOMER, organisation=acme, by=ADA, at=clock.tick()
    )
    assert assessed.standing_unresponsive is None
    with refused(
        err.NoStandingUnresponsiveRecord, "downgrade-needs-unresponsive-customer", "reply"
    ):
        assessed.downgrade(Severity.C, policy=policy, reason="x", by=AGENT, at=clock.tick())


def test_a_downgrade_lowers_the_severity(
    assessed: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    record_unresponsive(assessed, policy, clock)
    with refused(err.DowngradeMustLower, "downgrade-lowers-severity", "below B"):
        assessed.downgrade(Severity.B, policy=policy, reason="x", by=AGENT, at=clock.tick())


# -- working the case ---------------------------------------------------------------------


def test_a_response_needs_a_severity_first(
    case: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    with refused(err.SeverityNotAssessed, "severity-assessed-first", "Assess"):
        case.respond(message_summary="Hello", policy=policy, by=AGENT, at=clock.tick())


def test_only_the_first_response_stops_the_response_clock(
    responded: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    first = responded.first_responded_at
    responded.respond(message_summary="Update", policy=policy, by=AGENT, at=clock.tick())
    responses = [e for e in responded.collect_events() if isinstance(e, case_events.Responded)]
    assert [e.first_response for e in responses] == [True, False]
    assert responded.first_responded_at == first == responses[0].at


def test_agents_assign_only_themselves_and_supervisors_anyone(
    case: ServiceRequest, clock: Clock
) -> None:
    with refused(err.AgentsSelfAssignOnly, "agents-self-assign-only", "supervisor"):
        case.assign_agent("cyd", by=AGENT, at=clock.tick())
    case.assign_agent("bob", by=AGENT, at=clock.tick())
    case.assign_agent("cyd", by=SUPERVISOR, at=clock.tick())
    assert case.assigned_agent == "cyd"
    with refused(err.AgentAlreadyAssigned, "agent-already-assigned", "cyd"):
        case.assign_agent("cyd", by=OTHER_AGENT, at=clock.tick())
    with refused(err.SupportStaffOnly, "support-staff-only", "assign"):
        case.assign_agent("ada", by=ADA, at=clock.tick())


def test_customer_admins_add_only_customer_visible_notes(
    case: ServiceRequest, acme: Organisation, clock: Clock
) -> None:
    def note(visibility: NoteVisibility, by: Actor) -> None:
        case.add_note("Text", visibility=visibility, organisation=acme, by=by, at=clock.tick())

    rule = "customer-notes-are-customer-visible"
    with refused(err.CustomerNotesAreCustomerVisible, rule, "both see"):
        note(INTERNAL, ADA)
    with refused(err.StaffOrOrganisationAdminOnly, "staff-or-organisation-admin-only", "Acme"):
        note(CUSTOMER, USER)
    note(INTERNAL, AGENT)
    note(CUSTOMER, ADA)
    assert [(n.visibility, n.by) for n in case.notes] == [(INTERNAL, AGENT), (CUSTOMER, ADA)]


def test_notes_name_the_cases_own_organisation(
    case: ServiceRequest, make_organisation: MakeOrganisation, clock: Clock
) -> None:
    other = make_organisation(name="Other", at=clock.now)
    with refused(err.NotOrganisationsCase, "organisation-matches-case", "another organisation"):
        case.add_note("x", visibility=CUSTOMER, organisation=other, by=ADA, at=clock.tick())


def test_a_case_is_resolved_only_after_a_first_response(
    assessed: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    with refused(err.ResolveNeedsFirstResponse, "resolve-after-first-response", "Respond"):
        assessed.resolve(
            reason="fixed", resolution="Done", policy=policy, by=AGENT, at=clock.tick()
        )


# -- closing: resolved, reopened, satisfaction (§6) ---------------------------------------

CLOSED_COMMANDS: dict[str, Callable[[ServiceRequest, Organisation, Policy, Clock], None]] = {
    "assign severity": lambda c, o, p, t: c.assign_severity(
        Severity.C, agreement=Agreement.STANDARD, policy=p, by=AGENT, at=t.tick()
    ),
    "escalate": lambda c, o, p, t: c.escalate(
        Severity.A, agreement=Agreement.ADVANCED, policy=p, reason="x", by=AGENT, at=t.tick()
    ),
    "record unresponsive": lambda c, o, p, t: record_unresponsive(c, p, t),
    "downgrade": lambda c, o, p, t: c.downgrade(
        Severity.C, policy=p, reason="x", by=AGENT, at=t.tick()
    ),
    "respond": lambda c, o, p, t: c.respond(message_summary="x", policy=p, by=AGENT, at=t.tick()),
    "assign": lambda c, o, p, t: c.assign_agent("bob", by=AGENT, at=t.tick()),
    "note": lambda c, o, p, t: c.add_note(
        "x", visibility=CUSTOMER, organisation=o, by=ADA, at=t.tick()
    ),
    "resolve": lambda c, o, p, t: c.resolve(
        reason="fixed", resolution="x", policy=p, by=AGENT, at=t.tick()
    ),
}


@pytest.mark.parametrize("command", CLOSED_COMMANDS)
def test_a_resolved_case_accepts_only_reopen_and_satisfaction(
    command: str, resolved: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    with refused(err.CaseIsClosed, "resolved-case-is-closed", "reopened"):
        CLOSED_COMMANDS[command](resolved, acme, policy, clock)


def test_only_a_resolved_case_is_reopened_by_its_admin_or_staff(
    responded: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    def reopen(by: Actor = ADA) -> None:
        responded.reopen(reason="Again", policy=policy, organisation=acme, by=by, at=clock.tick())

    with refused(err.CaseNotResolved, "only-resolved-cases-reopen", "resolved"):
        reopen()
    responded.resolve(reason="fixed", resolution="Fixed", policy=policy, by=AGENT, at=clock.tick())
    with refused(err.StaffOrOrganisationAdminOnly, "staff-or-organisation-admin-only", "reopen"):
        reopen(USER)
    reopen()
    assert responded.status is CaseStatus.OPEN and responded.resolved_at is None


def test_satisfaction_is_recorded_once_after_resolution(
    responded: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    def answer(score: int = 5, by: Actor = ADA) -> None:
        responded.record_satisfaction(
            score, comment="Quick", organisation=acme, by=by, at=clock.tick()
        )

    with refused(err.SatisfactionBeforeResolution, "satisfaction-after-resolution", "resolved"):
        answer()
    responded.resolve(reason="fixed", resolution="Fixed", policy=policy, by=AGENT, at=clock.tick())
    rule = "satisfaction-from-customer-admin-or-system"
    with refused(err.SatisfactionByCustomerOrSystem, rule, "survey system"):
        answer(by=AGENT)
    with refused(err.SatisfactionScoreOutOfRange, "satisfaction-score-1-to-5", "1 to 5"):
        answer(6)
    answer(4, by=SURVEY)
    assert responded.satisfaction is not None and responded.satisfaction.score == 4
    with refused(err.SatisfactionAlreadyRecorded, "satisfaction-recorded-once", "already"):
        answer()


def test_a_platform_admin_may_import_a_survey_answer(
    responded: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    responded.resolve(reason="fixed", resolution="Fixed", policy=policy, by=AGENT, at=clock.tick())
    importer = Actor("survey-import", Role.ADMIN, Channel.API)
    responded.record_satisfaction(3, comment=None, organisation=acme, by=importer, at=clock.tick())
    assert responded.satisfaction is not None and responded.satisfaction.score == 3


@pytest.mark.parametrize("reason", [r.value for r in ClosureReason])
def test_a_case_resolves_for_every_closure_reason_of_the_policy(
    reason: str, responded: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    responded.resolve(reason=reason, resolution="Done", policy=policy, by=AGENT, at=clock.tick())
    resolved, _invited = responded.collect_events()[-2:]
    assert (resolved.reason, responded.closure_reason) == (reason, reason)
    assert resolved.out_of_scope == reason.startswith("out_of_scope_")


def test_an_unknown_closure_reason_is_refused_by_its_rule(
    responded: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    with pytest.raises(err.ClosureReasonUnknown) as refused:
        responded.resolve(
            reason="magic", resolution="Done", policy=policy, by=AGENT, at=clock.tick()
        )
    assert refused.value.rule == "closure-reason-is-known"
