"""A resolution invites the customer to the satisfaction survey (§6), until it is answered."""

from __future__ import annotations

from uuid import uuid4

from domain.cases import ServiceRequest
from domain.cases.survey import invitation_text
from domain.organisations import Organisation
from domain.policy import Policy
from tests.unit.conftest import ADA, AGENT, Clock


def event_names(case: ServiceRequest) -> list[str]:
    return [type(e).__name__ for e in case.collect_events()]


def test_resolving_invites_the_preferred_contact_right_after_the_resolution(
    responded: ServiceRequest, policy: Policy, clock: Clock
) -> None:
    responded.collect_events()
    responded.resolve(reason="fixed", resolution="Fixed", policy=policy, by=AGENT, at=clock.tick())
    resolved, invited = responded.collect_events()
    assert isinstance(resolved, ServiceRequest.Resolved)
    assert isinstance(invited, ServiceRequest.SurveyInvited)
    assert (invited.to, invited.by, invited.at) == (
        responded.preferred_contact.value,
        AGENT,
        resolved.at,
    )
    assert invited.originator_version == resolved.originator_version + 1


def test_a_case_resolved_again_is_invited_again_until_it_is_answered(
    responded: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    def resolve_and_reopen() -> None:
        responded.resolve(
            reason="fixed", resolution="Fixed", policy=policy, by=AGENT, at=clock.tick()
        )
        responded.reopen(
            reason="Broke again", policy=policy, organisation=acme, by=ADA, at=clock.tick()
        )

    responded.collect_events()
    resolve_and_reopen()
    assert event_names(responded) == ["Resolved", "SurveyInvited", "Reopened"]
    responded.resolve(reason="fixed", resolution="Fixed", policy=policy, by=AGENT, at=clock.tick())
    responded.record_satisfaction(4, comment=None, organisation=acme, by=ADA, at=clock.tick())
    responded.reopen(reason="Again", policy=policy, organisation=acme, by=ADA, at=clock.tick())
    assert event_names(responded) == [
        "Resolved",
        "SurveyInvited",
        "SatisfactionRecorded",
        "Reopened",
    ]
    responded.resolve(reason="fixed", resolution="Fixed", policy=policy, by=AGENT, at=clock.tick())
    assert event_names(responded) == ["Resolved"]  # answered once: never invited again


def test_the_invitation_names_the_case_and_the_portal_not_the_resolution() -> None:
    case_id = uuid4()
    text = invitation_text(case_id, "Mail bounces")
    assert str(case_id) in text and '"Mail bounces"' in text
    assert "portal" in text and "1 (very dissatisfied) to 5" in text
