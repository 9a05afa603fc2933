"""The published event contract: schemas match the code, payloads match the schemas,
and personal data and secrets stay out of the topic."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft202012Validator

from casebook.event_store import EventStore
from casebook.event_types import event_type, payload
from contract.case_event_schemas import json_schema
from contract.case_events import EVENT_CLASSES, PERSONAL_FIELDS, SECRET_FIELDS, analytics_payload
from domain.cases import NoteVisibility, ServiceRequest
from domain.erasure import erase_personal_data
from domain.incidents import ServiceIncident
from domain.organisations import PurchaseChannel
from domain.policy import Policy
from domain.sla import Metric, start
from domain.values import Agreement, Category, ContactKind, Severity
from entrypoints.cli import main
from entrypoints.schemas import asyncapi_document, drift
from projections.audit.checkpoint import EVENT_TYPE as CHECKPOINT_TYPE
from projections.audit.checkpoint import public_pem, sign
from projections.audit.schema import CHECKPOINT_TOPIC
from projections.sla.events import sla_event
from projections.sla.projection import CASE_EVENTS
from projections.sla.schema import SLA_EVENT_TYPES
from tests.unit.conftest import (
    ADA,
    AGENT,
    AGENT_ON_PHONE,
    REGISTERED_EMAIL,
    SUPERVISOR,
    Clock,
    MakeOrganisation,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
CALLER_PHONE = "+48 600 700 800"
CODE = "482913"
PARTNER_CONTACT = "Pat Partner, pat@resellers.example"
# Fields judged not personal, by name: a new field must be classified in
# contract/case_events.py (PERSONAL_FIELDS / SECRET_FIELDS) or added here.
PUBLIC = {
    *("organisation_id", "requester_id", "category", "preferred_contact", "verification_id"),
    *("partner_contact_acknowledged", "policy_version", "by", "at", "severity", "agreement"),
    *("previous_severity", "asked_at", "evidence_version", "evidence_asked_at"),
    *("first_response", "via", "agent_id", "visibility", "score", "name", "country"),
    *("timezone", "customer_timezone", "customer_country", "triage_severity"),
    *("expected_response_at", "waiting_estimate", "support_line"),
    *("purchase_channel", "partner_name", "admins", "principal_id", "kind", "send_to_kind"),
    *("expires_at", "max_attempts", "attempt", "locked", "attempts", "case_id"),
    # Resolved's closure reason is a policy code; other events' `reason` is free text,
    # classified personal per type in the contract, which wins over this list.
    *("reason", "out_of_scope"),
    # An erasure's data subject: a principal id, as public as `requester_id`.
    "subject",
    # A survey invitation's `to`: the kind of contact (email, phone), never the address.
    "to",
    # Service incidents: what they affect and the summary every customer reads.
    *("incident_id", "services", "categories", "summary", "started_at", "ended_at"),
}


def test_the_published_resolution_carries_its_closure_reason_not_its_free_text(
    recorded: list[Any],
) -> None:
    resolved = next(e for e in recorded if type(e).__name__ == "Resolved")
    published = analytics_payload(resolved, include_personal=False)
    assert (published["reason"], published["out_of_scope"]) == ("fixed", False)
    assert "resolution" not in published
    schema = json.loads((SCHEMAS / "events/casebook.case.resolved.v2.json").read_text())
    assert {"reason", "out_of_scope"} <= set(schema["required"])
    retired = json.loads((SCHEMAS / "events/casebook.case.resolved.v1.json").read_text())
    assert "reason" not in retired["properties"]


@pytest.fixture
def recorded(make_organisation: MakeOrganisation, policy: Policy, clock: Clock) -> list[Any]:
    """Events of every type from an organisation's life and a case's, as the store returns them."""
    acme = make_organisation(
        purchase_channel=PurchaseChannel.PARTNER,
        partner_name="Resellers Ltd",
        partner_contact=PARTNER_CONTACT,
    )
    acme.add_admin("eve", by=SUPERVISOR, at=clock.tick())
    acme.remove_admin("eve", by=SUPERVISOR, at=clock.tick())
    acme.register_contact(
        ContactKind.EMAIL, "helpdesk@acme.example", by=SUPERVISOR, at=clock.tick()
    )
    acme.remove_contact(ContactKind.EMAIL, "helpdesk@acme.example", by=SUPERVISOR, at=clock.tick())
    acme.change_agreement(Agreement.ADVANCED, by=SUPERVISOR, at=clock.tick())
    acme.change_locale(country="DE", timezone="Europe/Berlin", by=SUPERVISOR, at=clock.tick())
    verification_id, sent_at = uuid.uuid4(), clock.tick()
    acme.request_caller_verification(
        verification_id,
        caller_phone=CALLER_PHONE,
        send_to=REGISTERED_EMAIL,
        code=CODE,
        expires_at=sent_at + timedelta(minutes=15),
        by=AGENT_ON_PHONE,
        at=sent_at,
    )
    acme.confirm_caller_verification(verification_id, "000000", by=AGENT_ON_PHONE, at=clock.tick())
    acme.confirm_caller_verification(verification_id, CODE, by=AGENT_ON_PHONE, at=clock.tick())
    case = ServiceRequest.open(
        organisation=acme,
        requester_id="ada",
        category=Category.TECHNICAL,
        title="Mail is not delivered",
        description="Ada Lovelace reports no mail since 08:00; call her back.",
        contact_phone=CALLER_PHONE,
        contact_email="ada@acme.example",
        preferred_contact=ContactKind.PHONE,
        policy=policy,
        by=AGENT_ON_PHONE,
        at=clock.tick(),
        caller_phone=CALLER_PHONE,
        verification_id=verification_id,
        partner_contact_acknowledged=True,
    )
    locked, late = uuid.uuid4(), uuid.uuid4()
    for pin in (locked, late):
        acme.request_caller_verification(
            pin, caller_phone=CALLER_PHONE, code=CODE, by=AGENT_ON_PHONE, at=clock.tick()
        )
    for _ in range(5):
        acme.confirm_caller_verification(locked, "000000", by=AGENT_ON_PHONE, at=clock.tick())
    acme.confirm_caller_verification(late, CODE, by=AGENT_ON_PHONE, at=clock.tick(minutes=11))
    work = {"policy": policy, "by": AGENT}
    case.assign_severity(Severity.B, agreement=acme.agreement, at=clock.tick(), **work)
    case.escalate(Severity.A, agreement=acme.agreement, reason="All users", at=clock.tick(), **work)
    asked_at = clock.tick()
    case.record_customer_unresponsive(
        requested="Message trace", asked_at=asked_at, at=clock.tick(days=2), **work
    )
    case.downgrade(Severity.B, reason="No trace sent", at=clock.tick(), **work)
    case.respond(message_summary="Checking the connector", at=clock.tick(), **work)
    case.assign_agent("bob", by=AGENT, at=clock.tick())
    case.add_note(
        "Ada says it started after the DNS change",
        visibility=NoteVisibility.INTERNAL,
        organisation=acme,
        by=AGENT,
        at=clock.tick(),
    )
    case.resolve(reason="fixed", resolution="Connector re-enabled", at=clock.tick(), **work)
    case.reopen(
        reason="It stopped again", policy=policy, organisation=acme, by=ADA, at=clock.tick()
    )
    case.resolve(reason="fixed", resolution="MX record fixed", at=clock.tick(), **work)
    case.record_satisfaction(5, comment="Thanks Bob!", organisation=acme, by=ADA, at=clock.tick())
    acme.change_purchase_channel(PurchaseChannel.DIRECT, by=SUPERVISOR, at=clock.tick())
    outage = ServiceIncident.declare(
        services=["Exchange Online"],
        categories=[Category.TECHNICAL],
        summary="Mail delivery is delayed in Europe",
        started_at=clock.tick(),
        by=SUPERVISOR,
        at=clock.tick(),
    )
    outage.update(summary="Mail delivery is delayed", by=SUPERVISOR, at=clock.tick())
    case.link_to_incident(outage.id, by=AGENT, at=clock.tick())
    outage.close(ended_at=clock.tick(), by=SUPERVISOR, at=clock.tick())
    erasure = {"reason": "Erasure request DSR-7", "by": SUPERVISOR}
    erase_personal_data(case, subject="ada", at=clock.tick(), **erasure)
    erase_personal_data(acme, subject=None, at=clock.tick(), **erasure)
    # Round-trip through the store's mapper: the relay publishes decoded events.
    mapper = EventStore().mapper
    events = [*acme.collect_events(), *case.collect_events(), *outage.collect_events()]
    return [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]


@pytest.fixture
def by_type(recorded: list[Any]) -> dict[str, Any]:
    """The last recorded event of each type."""
    return {event_type(event): event for event in recorded}


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_schema_files_match_the_code() -> None:
    found = drift(SCHEMAS)
    assert not found, f"schemas/ is out of date ({found}): run `casebook schemas write`"


def test_every_event_class_has_a_schema_file_and_an_asyncapi_message() -> None:
    document = asyncapi_document()
    messages = document["components"]["messages"]
    channel = document["channels"]["caseEvents"]
    assert channel["address"] == "casebook.case-events.v1"
    assert set(channel["messages"]) == set(EVENT_CLASSES)
    assert set(messages) == set(EVENT_CLASSES) | set(SLA_EVENT_TYPES) | {CHECKPOINT_TYPE}
    checkpoints = document["channels"]["auditCheckpoints"]
    assert checkpoints["address"] == CHECKPOINT_TOPIC == "casebook.audit-checkpoints.v1"
    assert set(checkpoints["messages"]) == {CHECKPOINT_TYPE}
    sla_channel = document["channels"]["slaEvents"]
    assert sla_channel["address"] == "casebook.sla-events.v1"
    assert set(sla_channel["messages"]) == set(SLA_EVENT_TYPES)
    for kind in [*EVENT_CLASSES, *SLA_EVENT_TYPES]:
        schema = json.loads((SCHEMAS / "events" / f"{kind}.json").read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["title"] == kind
        assert schema["additionalProperties"] is False
        assert messages[kind]["payload"] == {"$ref": f"events/{kind}.json"}
        assert messages[kind]["headers"]["allOf"][1]["properties"]["ce_type"] == {"const": kind}


def test_a_signed_checkpoint_validates_against_its_published_schema() -> None:
    key = Ed25519PrivateKey.generate()
    checkpoint = sign(
        key,
        number=2,
        after=10,
        upto=25,
        count=14,
        merkle_root=bytes(32),
        prev_digest="ab" * 32,
        created_at=datetime(2025, 3, 4, 12, tzinfo=UTC),
        access_head=(7, "cd" * 32),
    )
    payload = checkpoint.as_json() | {"public_key": public_pem(key.public_key())}
    path = SCHEMAS / "events" / f"{CHECKPOINT_TYPE}.json"
    schema = validator(json.loads(path.read_text(encoding="utf-8")))
    schema.validate(payload)
    # Format 1, as published before the access log was signed, still validates.
    schema.validate(
        {k: v for k, v in payload.items() if not k.startswith("access_")}
        | {"format": "casebook-audit-checkpoint/1"}
    )


def test_every_sla_transition_validates_against_its_published_schema() -> None:
    opened = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
    started = start(
        "7a4c1d9e-0000-4000-8000-000000000001",
        Metric.INITIAL_RESPONSE,
        "A",
        opened,
        None,
        calendar="continuous",
        policy_version="2025.2",
        at=opened,
        reason="severity A assigned",
    )
    for transition in started:
        event = sla_event(transition, "7a4c1d9e-0000-4000-8000-000000000002", "technical")
        schema = json.loads((SCHEMAS / "events" / f"{event.type}.json").read_text("utf-8"))
        checker = Draft202012Validator.FORMAT_CHECKER
        Draft202012Validator(schema, format_checker=checker).validate(event.payload)


def test_the_lifecycle_records_every_published_event_type(by_type: dict[str, Any]) -> None:
    assert set(by_type) == set(EVENT_CLASSES)


@pytest.mark.parametrize("kind", sorted(EVENT_CLASSES))
@pytest.mark.parametrize("include_personal", [False, True], ids=["default", "personal"])
def test_analytics_payload_validates_against_its_schema(
    by_type: dict[str, Any], kind: str, include_personal: bool
) -> None:
    schema = json_schema(EVENT_CLASSES[kind], include_personal=include_personal)
    body = json.loads(
        json.dumps(analytics_payload(by_type[kind], include_personal=include_personal))
    )
    errors = [e.message for e in validator(schema).iter_errors(body)]
    assert errors == []


def test_personal_fields_are_published_only_when_asked_and_secrets_never(
    by_type: dict[str, Any],
) -> None:
    for kind, event in by_type.items():
        everything = set(payload(event))
        default = set(analytics_payload(event, include_personal=False))
        personal = set(analytics_payload(event, include_personal=True))
        assert not default & (PERSONAL_FIELDS[kind] | SECRET_FIELDS[kind]), kind
        assert PERSONAL_FIELDS[kind] <= personal, kind
        assert not personal & SECRET_FIELDS[kind], kind
        assert default | PERSONAL_FIELDS[kind] | SECRET_FIELDS[kind] == everything, kind


def test_no_contact_detail_or_code_digest_reaches_the_default_payloads(
    recorded: list[Any],
) -> None:
    published = json.dumps([analytics_payload(e, include_personal=False) for e in recorded])
    contacts = (CALLER_PHONE, "600700800", "221234567", "acme.example", "Pat Partner")
    for secret in (*contacts, "Ada Lovelace", "DNS change", "Bob!"):
        assert secret not in published
    requested = next(e for e in recorded if event_type(e).endswith("verification_requested.v1"))
    assert requested.code_digest not in json.dumps(
        [analytics_payload(e, include_personal=True) for e in recorded]
    )


def test_the_published_survey_invitation_names_the_contact_kind_not_the_address(
    by_type: dict[str, Any],
) -> None:
    invited = analytics_payload(by_type["casebook.case.survey_invited.v1"], include_personal=True)
    preferred = by_type["casebook.case.opened.v5"].preferred_contact
    assert set(invited) == {"to", "by", "at"} and invited["to"] == preferred


def test_the_sla_tracker_knows_every_case_event_type_on_the_topic() -> None:
    case_types = [kind.split(".") for kind in EVENT_CLASSES if kind.startswith("casebook.case.")]
    unknown = [f"{name}.{v}" for _, _, name, v in case_types if v[1:] not in CASE_EVENTS[name]]
    assert unknown == []


def test_every_field_is_classified_as_public_personal_or_secret() -> None:
    for kind, cls in EVENT_CLASSES.items():
        fields = set(json_schema(cls, include_personal=True)["properties"]) | SECRET_FIELDS[kind]
        unclassified = fields - PERSONAL_FIELDS[kind] - SECRET_FIELDS[kind] - PUBLIC
        assert not unclassified, f"{kind}: classify {sorted(unclassified)}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_schemas_check_names_the_first_drifted_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, copy)
    assert run(capsys, "schemas", "check", "--dir", str(copy))[0] == 0
    edited = copy / "events" / "casebook.case.opened.v1.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace('"uuid"', '"uri"', 1))
    code, out, err = run(capsys, "schemas", "check", "--dir", str(copy))
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert str(edited) in err and "casebook schemas write" in err


def test_schemas_write_makes_check_pass(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "out"
    assert run(capsys, "schemas", "check", "--dir", str(target))[0] == 1
    assert run(capsys, "schemas", "write", "--dir", str(target))[0] == 0
    (target / "events" / "casebook.case.retired.v1.json").write_text("{}\n")
    assert "is no longer generated" in run(capsys, "schemas", "check", "--dir", str(target))[2]
    assert run(capsys, "schemas", "write", "--dir", str(target))[0] == 0
    assert run(capsys, "schemas", "check", "--dir", str(target))[0] == 0
