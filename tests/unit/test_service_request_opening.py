"""Opening a service request: who may ask, by which channel, with what (§1, §2)."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from domain.cases import CaseStatus, ServiceRequest
from domain.cases import errors as err
from domain.cases import events as case_events
from domain.organisations import Organisation, PurchaseChannel
from domain.organisations.errors import VerificationAlreadyUsed as OrgVerificationAlreadyUsed
from domain.policy import Policy
from tests.unit.conftest import (
    ADA,
    ADA_ON_PHONE,
    AGENT,
    AGENT_ON_PHONE,
    AUDITOR,
    REGISTERED_EMAIL,
    USER,
    Clock,
    MakeOrganisation,
    OpenCase,
    refused,
)


def test_only_a_customer_admin_may_open_a_request(open_case: OpenCase) -> None:
    with refused(err.RequesterNotAdmin, "only-customer-admins-open-requests", "community forums"):
        open_case(requester_id="uma", by=USER)


def test_an_admin_opens_only_for_themself(open_case: OpenCase, acme: Organisation) -> None:
    acme.add_admin("uma", by=ADA, at=acme.modified_on)
    with refused(err.OpenerNotAllowed, "opened-by-admin-or-staff-on-their-behalf", "for ada"):
        open_case(requester_id="ada", by=USER)
    with refused(err.OpenerNotAllowed, "opened-by-admin-or-staff-on-their-behalf", "auditor"):
        open_case(by=AUDITOR)


def test_staff_open_for_an_admin_only_during_a_phone_call(open_case: OpenCase) -> None:
    with refused(err.OpenerNotAllowed, "opened-by-admin-or-staff-on-their-behalf", "phone"):
        open_case(by=AGENT)
    case = open_case(by=AGENT_ON_PHONE, caller_phone="+48 22 123 45 67")
    assert case.requester_id == "ada" and case.opened_by == AGENT_ON_PHONE


def test_a_phone_request_records_the_callers_number(open_case: OpenCase) -> None:
    with refused(err.CallerPhoneRequired, "phone-requests-record-caller-number", "phone number"):
        open_case(by=ADA_ON_PHONE)


def test_an_unregistered_caller_must_read_back_a_pin_first(
    open_case: OpenCase, acme: Organisation, clock: Clock
) -> None:
    caller = "+44 20 7946 0000"
    with refused(err.CallerNotVerified, "unregistered-callers-verify-pin", "one-time code"):
        open_case(by=AGENT_ON_PHONE, caller_phone=caller)
    verification_id = uuid4()
    acme.request_caller_verification(
        verification_id,
        caller_phone=caller,
        send_to=REGISTERED_EMAIL,
        code="482913",
        expires_at=clock.now + timedelta(minutes=10),
        by=AGENT_ON_PHONE,
        at=clock.tick(),
    )
    acme.confirm_caller_verification(verification_id, "482913", by=AGENT_ON_PHONE, at=clock.tick())
    case = open_case(by=AGENT_ON_PHONE, caller_phone=caller, verification_id=verification_id)
    assert case.caller_phone == caller
    used = acme.collect_events()[-1]
    assert isinstance(used, Organisation.CallerVerificationUsed) and used.case_id == case.id
    with refused(OrgVerificationAlreadyUsed, "verification-opens-one-case", "send a new code"):
        open_case(by=AGENT_ON_PHONE, caller_phone=caller, verification_id=verification_id)


def test_partner_customers_see_the_partners_contact_first(
    open_case: OpenCase, make_organisation: MakeOrganisation
) -> None:
    partnered = make_organisation(
        purchase_channel=PurchaseChannel.PARTNER,
        partner_name="Resell Ltd",
        partner_contact="help@resell.example",
    )
    rule = "partner-customers-see-partner-contact-first"
    with refused(err.PartnerContactNotAcknowledged, rule, "help@resell.example"):
        open_case(organisation=partnered)
    assert open_case(organisation=partnered, partner_contact_acknowledged=True)


def test_a_request_needs_a_title_and_contact_details(open_case: OpenCase) -> None:
    with refused(err.TitleRequired, "title-is-required", "title"):
        open_case(title=" ")
    with refused(err.RequiredTextMissing, "required-text-missing", "e-mail"):
        open_case(contact_email="")


def test_an_opened_request_awaits_assessment_without_a_severity(
    case: ServiceRequest, policy: Policy
) -> None:
    assert case.status is CaseStatus.AWAITING_ASSESSMENT and case.severity is None
    [opened] = case.collect_events()
    assert isinstance(opened, case_events.Opened)
    assert not hasattr(opened, "severity")
    assert opened.policy_version == policy.version == case.policy_version
    assert opened.at == case.opened_at == opened.timestamp
