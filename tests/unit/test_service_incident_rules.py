"""Service incidents (policy §1): who manages them, what they say, when they end, and
which ones an opening is shown first."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.cases import ServiceRequest
from domain.cases import errors as case_errors
from domain.incidents import IncidentAnswer, ServiceIncident, incident_to_link
from domain.incidents import errors as err
from domain.values import Category
from tests.unit.conftest import ADA, AGENT, SUPERVISOR, Clock, refused


@pytest.fixture
def outage(clock: Clock) -> ServiceIncident:
    """Mail delayed: the Exchange Online service and technical requests, since now."""
    at = clock.tick()
    return ServiceIncident.declare(
        services=["Exchange Online", " "],
        categories=[Category.TECHNICAL, Category.TECHNICAL],
        summary=" Mail delivery is delayed. ",
        started_at=at,
        by=SUPERVISOR,
        at=at,
    )


def test_a_declared_incident_keeps_its_scope_without_blanks_or_repeats(
    outage: ServiceIncident, clock: Clock
) -> None:
    assert outage.services == ("Exchange Online",)
    assert outage.categories == (Category.TECHNICAL,)
    assert outage.summary == "Mail delivery is delayed."
    assert outage.in_force(clock.now) and not outage.in_force(clock.now - timedelta(hours=1))


def test_only_supervisors_manage_incidents(outage: ServiceIncident, clock: Clock) -> None:
    says = "Only supervisors can"
    with refused(err.SupervisorsManageIncidents, "only-supervisors-manage-incidents", says):
        ServiceIncident.declare(
            services=["Mail"],
            categories=[],
            summary="x",
            started_at=clock.now,
            by=AGENT,
            at=clock.now,
        )
    with refused(err.SupervisorsManageIncidents, "only-supervisors-manage-incidents", "agent"):
        outage.update(summary="Fixed?", by=AGENT, at=clock.tick())
    with refused(err.SupervisorsManageIncidents, "only-supervisors-manage-incidents", "close"):
        outage.close(ended_at=clock.now, by=ADA, at=clock.tick())
    assert outage.version == 1


def test_a_closed_incident_is_final_and_ends_no_earlier_than_it_started(
    outage: ServiceIncident, clock: Clock
) -> None:
    with refused(err.IncidentEndsAfterStart, "incident-ends-after-it-starts", "cannot end"):
        outage.close(
            ended_at=outage.started_at - timedelta(seconds=1), by=SUPERVISOR, at=clock.tick()
        )
    outage.close(ended_at=clock.now, by=SUPERVISOR, at=clock.tick())

    assert not outage.in_force(clock.now)
    with refused(err.IncidentIsClosed, "closed-incidents-are-final", "declare a new one"):
        outage.update(summary="Back again", by=SUPERVISOR, at=clock.tick())


def test_an_update_changes_something_and_keeps_a_scope(
    outage: ServiceIncident, clock: Clock
) -> None:
    with refused(err.IncidentUnchanged, "incident-update-changes-something", "current values"):
        outage.update(summary="Mail delivery is delayed.", by=SUPERVISOR, at=clock.tick())
    with refused(err.IncidentScopeRequired, "incident-names-what-it-affects", "at least one"):
        outage.update(services=[], categories=[], by=SUPERVISOR, at=clock.tick())
    outage.update(categories=[], by=SUPERVISOR, at=clock.tick())

    assert (outage.services, outage.categories, outage.version) == (("Exchange Online",), (), 2)


def test_an_opening_is_shown_the_incidents_that_may_explain_it(outage: ServiceIncident) -> None:
    answer = IncidentAnswer()

    with pytest.raises(err.IncidentShownFirst) as shown:
        incident_to_link(
            [outage], category="technical", service=None, answer=answer, acknowledged=None
        )
    unrelated = incident_to_link(
        [outage], category="billing", service=None, answer=answer, acknowledged=None
    )
    named = incident_to_link(
        [outage],
        category="billing",
        service="exchange ONLINE",
        answer=IncidentAnswer(outage.id),
        acknowledged=outage,
    )

    assert shown.value.rule == "service-incident-shown-first"
    assert [i["id"] for i in shown.value.details["incidents"]] == [str(outage.id)]  # type: ignore[index]
    assert unrelated is None and named is outage


def test_an_answer_names_one_incident_or_none(outage: ServiceIncident) -> None:
    with refused(err.IncidentAnswerAmbiguous, "incident-answer-is-one-choice", "not both"):
        IncidentAnswer(outage.id, unrelated=True)
    assert (
        incident_to_link(
            [outage],
            category="technical",
            service=None,
            answer=IncidentAnswer(unrelated=True),
            acknowledged=None,
        )
        is None
    )


def test_a_case_is_linked_by_staff_later_and_to_one_incident_at_a_time(
    case: ServiceRequest, clock: Clock
) -> None:
    incident_id = uuid4()
    with refused(case_errors.SupportStaffOnly, "support-staff-only", "link a case"):
        case.link_to_incident(incident_id, by=ADA, at=clock.tick())
    case.link_to_incident(incident_id, by=AGENT, at=clock.tick())

    with refused(
        case_errors.CaseAlreadyLinkedToIncident, "case-linked-to-incident-once", "already linked"
    ):
        case.link_to_incident(incident_id, by=AGENT, at=clock.tick())
    assert case.incident_id == incident_id
