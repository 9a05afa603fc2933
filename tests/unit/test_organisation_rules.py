"""The Organisation aggregate: admins, contacts, partner purchase and the phone PIN (§1, §2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from domain.errors import NaiveTimestamp, OutOfOrderTimestamp
from domain.organisations import Organisation, PurchaseChannel
from domain.organisations import errors as org_errors
from domain.organisations import events as org_events
from domain.policy import DurationSpec
from domain.policy.model import CallerVerificationSpec
from domain.values import Actor, Agreement, ContactKind
from tests.unit.conftest import (
    ADA,
    AGENT,
    REGISTERED_EMAIL,
    REGISTERED_PHONE,
    SUPERVISOR,
    Clock,
    MakeOrganisation,
    refused,
)

UNKNOWN_PHONE = "+44 20 7946 0000"


def test_registering_needs_at_least_one_admin(make_organisation: MakeOrganisation) -> None:
    with refused(
        org_errors.OrganisationNeedsAnAdmin,
        "organisation-needs-an-admin",
        "at least one customer administrator",
    ):
        make_organisation(admins=[])


def test_registering_records_normalised_contacts_and_locale(acme: Organisation) -> None:
    assert acme.is_admin("ada")
    assert acme.has_registered_phone("+48221234567")
    assert acme.has_registered_phone("+48 (22) 123-45-67")
    assert acme.locale.timezone == "Europe/Warsaw"
    assert not acme.bought_through_partner
    [registered] = acme.collect_events()
    assert isinstance(registered, org_events.Registered)
    assert registered.phones == ("+48221234567",)
    assert registered.by == SUPERVISOR


def test_registering_refuses_an_unknown_time_zone(make_organisation: MakeOrganisation) -> None:
    with refused(
        org_errors.InvalidOrganisationDetails, "organisation-details-are-valid", "Mars/Olympus"
    ):
        make_organisation(timezone="Mars/Olympus")


def test_a_partner_purchase_names_the_partner(make_organisation: MakeOrganisation) -> None:
    with refused(
        org_errors.PartnerDetailsInvalid,
        "partner-purchase-names-partner",
        "partner's name and contact",
    ):
        make_organisation(purchase_channel=PurchaseChannel.PARTNER, partner_name="Resell Ltd")
    org = make_organisation(
        purchase_channel=PurchaseChannel.PARTNER,
        partner_name="Resell Ltd",
        partner_contact="help@resell.example",
    )
    assert org.bought_through_partner


def test_an_admin_is_added_once(acme: Organisation, clock: Clock) -> None:
    acme.add_admin("eve", by=ADA, at=clock.tick())
    assert acme.is_admin("eve")
    with refused(org_errors.AdminAlreadyPresent, "admin-already-added", "eve is already"):
        acme.add_admin("eve", by=ADA, at=clock.tick())


def test_the_last_admin_cannot_be_removed(acme: Organisation, clock: Clock) -> None:
    with refused(org_errors.LastAdminCannotBeRemoved, "last-admin-stays", "only administrator"):
        acme.remove_admin("ada", by=ADA, at=clock.tick())
    acme.add_admin("eve", by=ADA, at=clock.tick())
    acme.remove_admin("ada", by=ADA, at=clock.tick())
    assert acme.admins == {"eve"}


def test_removing_an_unknown_admin_is_refused(acme: Organisation, clock: Clock) -> None:
    with refused(org_errors.UnknownAdmin, "admin-not-found", "mallory"):
        acme.remove_admin("mallory", by=ADA, at=clock.tick())


def test_a_contact_is_registered_once_in_any_spelling(acme: Organisation, clock: Clock) -> None:
    with refused(
        org_errors.ContactAlreadyRegistered, "contact-already-registered", "already registered"
    ):
        acme.register_contact(ContactKind.PHONE, "+48-22-123-45-67", by=ADA, at=clock.tick())
    acme.register_contact(ContactKind.EMAIL, "Boss@Acme.example", by=ADA, at=clock.tick())
    assert "boss@acme.example" in acme.emails


def test_removing_an_unregistered_contact_is_refused(acme: Organisation, clock: Clock) -> None:
    with refused(org_errors.UnknownContact, "contact-not-registered", "nobody@acme.example"):
        acme.remove_contact(ContactKind.EMAIL, "nobody@acme.example", by=ADA, at=clock.tick())
    acme.remove_contact(ContactKind.EMAIL, REGISTERED_EMAIL, by=ADA, at=clock.tick())
    assert acme.emails == set()


def test_a_malformed_contact_is_refused(acme: Organisation, clock: Clock) -> None:
    with refused(org_errors.InvalidContact, "contact-is-valid", "not an e-mail address"):
        acme.register_contact(ContactKind.EMAIL, "not-an-address", by=ADA, at=clock.tick())


def test_agreement_channel_and_locale_changes_are_recorded(
    acme: Organisation, clock: Clock
) -> None:
    acme.change_agreement(Agreement.ADVANCED, by=SUPERVISOR, at=clock.tick())
    acme.change_purchase_channel(
        PurchaseChannel.PARTNER,
        partner_name="Resell Ltd",
        partner_contact="+48 600 000 000",
        by=SUPERVISOR,
        at=clock.tick(),
    )
    acme.change_locale(country="DE", timezone="Europe/Berlin", by=ADA, at=clock.tick())
    assert acme.agreement is Agreement.ADVANCED
    assert acme.bought_through_partner and acme.partner_name == "Resell Ltd"
    assert (acme.country, acme.timezone) == ("DE", "Europe/Berlin")


def test_commands_refuse_naive_or_backdated_times(acme: Organisation, clock: Clock) -> None:
    with refused(NaiveTimestamp, "timestamps-are-timezone-aware", "no time zone"):
        acme.add_admin("eve", by=ADA, at=datetime(2025, 3, 3, 10, 0))
    with refused(OutOfOrderTimestamp, "actions-in-time-order", "before the last recorded action"):
        acme.add_admin("eve", by=ADA, at=clock.now - timedelta(hours=1))


# -- the phone PIN (§2) ----------------------------------------------------------------


def _request_pin(org: Organisation, clock: Clock, code: str = "482913", **kw: Any) -> UUID:
    verification_id = uuid4()
    fields: dict[str, Any] = {
        "caller_phone": UNKNOWN_PHONE,
        "send_to": REGISTERED_EMAIL,
        "code": code,
        "expires_at": clock.now + timedelta(minutes=10),
        "by": AGENT,
        "at": clock.tick(),
    }
    org.request_caller_verification(verification_id, **(fields | kw))
    return verification_id


def test_a_pin_is_stored_only_as_a_salted_digest(acme: Organisation, clock: Clock) -> None:
    verification_id = _request_pin(acme, clock, code="482913")
    requested = acme.collect_events()[-1]
    assert isinstance(requested, org_events.CallerVerificationRequested)
    assert "482913" not in repr(vars(requested))
    assert len(requested.code_digest) == 64
    other = _request_pin(acme, clock, code="482913")
    assert acme.verifications[other].code_digest != acme.verifications[verification_id].code_digest


def test_a_registered_caller_needs_no_pin(acme: Organisation, clock: Clock) -> None:
    with refused(
        org_errors.VerificationNotNeeded,
        "registered-callers-need-no-pin",
        "no verification code is needed",
    ):
        _request_pin(acme, clock, caller_phone="+48 22 123 45 67")


def test_the_pin_goes_only_to_a_registered_contact(acme: Organisation, clock: Clock) -> None:
    with refused(
        org_errors.VerificationTargetNotRegistered,
        "pin-goes-to-registered-contact",
        "registered contact",
    ):
        _request_pin(acme, clock, send_to="attacker@evil.example")
    _request_pin(acme, clock, send_to=REGISTERED_PHONE)


def test_only_support_staff_send_pins(acme: Organisation, clock: Clock) -> None:
    with refused(
        org_errors.CallerVerificationByStaffOnly, "support-staff-verify-callers", "support agents"
    ):
        _request_pin(acme, clock, by=ADA)


def test_the_right_code_verifies_the_caller_until_expiry(acme: Organisation, clock: Clock) -> None:
    verification_id = _request_pin(acme, clock, code="482913")
    outcome = acme.confirm_caller_verification(
        verification_id, "482 913", by=AGENT, at=clock.tick()
    )
    assert outcome.verified
    assert acme.is_caller_verified(verification_id, UNKNOWN_PHONE, clock.tick())
    assert not acme.is_caller_verified(verification_id, "+44 20 7946 0001", clock.now)
    assert not acme.is_caller_verified(verification_id, UNKNOWN_PHONE, clock.tick(minutes=15))
    assert not acme.is_caller_verified(None, UNKNOWN_PHONE, clock.now)


def test_a_wrong_code_is_recorded_and_returned_not_raised(acme: Organisation, clock: Clock) -> None:
    verification_id = _request_pin(acme, clock)
    acme.collect_events()
    outcome = acme.confirm_caller_verification(verification_id, "000000", by=AGENT, at=clock.tick())
    assert (outcome.verified, outcome.attempts_left, outcome.locked) == (False, 4, False)
    [failed] = acme.collect_events()
    assert isinstance(failed, org_events.CallerVerificationFailed)
    assert (failed.attempt, failed.locked) == (1, False)
    assert not acme.is_caller_verified(verification_id, UNKNOWN_PHONE, clock.now)


def test_five_wrong_codes_lock_the_verification(acme: Organisation, clock: Clock) -> None:
    verification_id = _request_pin(acme, clock, code="482913")
    acme.collect_events()
    outcomes = [
        acme.confirm_caller_verification(verification_id, "111111", by=AGENT, at=clock.tick())
        for _ in range(5)
    ]
    assert [o.locked for o in outcomes] == [False] * 4 + [True]
    *_, failed, locked = acme.collect_events()
    assert isinstance(failed, org_events.CallerVerificationFailed) and failed.attempt == 5
    assert isinstance(locked, org_events.CallerVerificationLocked) and locked.attempts == 5
    with refused(
        org_errors.VerificationLocked, "verification-attempts-exhausted", "send a new code"
    ):
        acme.confirm_caller_verification(verification_id, "482913", by=AGENT, at=clock.tick())


def test_a_code_expires_ten_minutes_after_it_was_sent(acme: Organisation, clock: Clock) -> None:
    verification_id = _request_pin(acme, clock, code="482913", expires_at=None)
    acme.collect_events()
    late = acme.confirm_caller_verification(
        verification_id, "482913", by=AGENT, at=clock.tick(minutes=10, seconds=1)
    )
    assert (late.verified, late.expired, late.locked) == (False, True, False)
    [expired] = acme.collect_events()
    assert isinstance(expired, org_events.CallerVerificationExpired)
    with refused(org_errors.VerificationExpired, "verification-code-expired", "expired"):
        acme.confirm_caller_verification(verification_id, "482913", by=AGENT, at=clock.tick())
    assert acme.collect_events() == []


def test_a_used_code_cannot_be_read_back_again(acme: Organisation, clock: Clock) -> None:
    verification_id = _request_pin(acme, clock, code="482913")
    acme.confirm_caller_verification(verification_id, "482913", by=AGENT, at=clock.tick())
    with refused(
        org_errors.VerificationAlreadyCompleted, "verification-already-completed", "used once"
    ):
        acme.confirm_caller_verification(verification_id, "482913", by=AGENT, at=clock.tick())


def test_without_a_target_the_code_goes_to_the_first_registered_email(
    acme: Organisation, clock: Clock
) -> None:
    verification_id = _request_pin(acme, clock, send_to=None)
    assert acme.verifications[verification_id].send_to == REGISTERED_EMAIL


def test_an_unknown_verification_is_refused(acme: Organisation, clock: Clock) -> None:
    with refused(org_errors.UnknownVerification, "verification-not-found", "No verification"):
        acme.confirm_caller_verification(uuid4(), "482913", by=AGENT, at=clock.tick())


def test_organisation_replays_to_the_same_state(acme: Organisation, clock: Clock) -> None:
    acme.add_admin("eve", by=ADA, at=clock.tick())
    verification_id = _request_pin(acme, clock, code="482913")
    acme.confirm_caller_verification(verification_id, "000000", by=AGENT, at=clock.tick())
    acme.confirm_caller_verification(verification_id, "482913", by=AGENT, at=clock.tick())
    replayed: Organisation | None = None
    for recorded in acme.collect_events():
        replayed = recorded.mutate(replayed)
    assert replayed == acme
    assert isinstance(replayed, Organisation)
    assert replayed.is_caller_verified(verification_id, UNKNOWN_PHONE, clock.now)


def test_every_organisation_event_says_who_and_when(acme: Organisation, clock: Clock) -> None:
    at = clock.tick()
    acme.add_admin("eve", by=ADA, at=at)
    added = acme.collect_events()[-1]
    assert isinstance(added, org_events.AdminAdded)
    assert (added.by, added.at, added.timestamp) == (ADA, at, at)
    assert isinstance(added.by, Actor) and added.class_version == 1


def test_a_verification_id_is_used_once(acme: Organisation, clock: Clock) -> None:
    verification_id = _request_pin(acme, clock)
    with refused(org_errors.VerificationAlreadyRequested, "verification-id-is-unique", "exists"):
        acme.request_caller_verification(
            verification_id,
            caller_phone=UNKNOWN_PHONE,
            send_to=REGISTERED_EMAIL,
            code="123456",
            expires_at=clock.now + timedelta(minutes=10),
            by=AGENT,
            at=clock.tick(),
        )


def test_a_verification_needs_a_code_and_a_future_expiry(acme: Organisation, clock: Clock) -> None:
    with refused(
        org_errors.InvalidVerificationRequest, "verification-request-is-valid", "expiry after now"
    ):
        _request_pin(acme, clock, expires_at=clock.now - timedelta(minutes=1))
    with refused(
        org_errors.InvalidVerificationRequest, "verification-request-is-valid", "needs a code"
    ):
        _request_pin(acme, clock, code="  ")


def test_a_verified_caller_cannot_be_verified_again(acme: Organisation, clock: Clock) -> None:
    verification_id = _request_pin(acme, clock, code="482913")
    acme.confirm_caller_verification(verification_id, "482913", by=AGENT, at=clock.tick())
    with refused(
        org_errors.VerificationAlreadyCompleted, "verification-already-completed", "already"
    ):
        acme.confirm_caller_verification(verification_id, "482913", by=AGENT, at=clock.tick())


def test_the_policy_sets_the_attempts_and_the_life_of_a_code(
    acme: Organisation, clock: Clock
) -> None:
    rules = CallerVerificationSpec(max_attempts=2, valid_for=DurationSpec(minutes=3))
    verification_id = _request_pin(acme, clock, expires_at=None, rules=rules)
    assert acme.verifications[verification_id].expires_at == clock.now + timedelta(minutes=3)
    wrong = [
        acme.confirm_caller_verification(verification_id, "111111", by=AGENT, at=clock.tick())
        for _ in range(2)
    ]
    assert [outcome.locked for outcome in wrong] == [False, True]
