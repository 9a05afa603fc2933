"""A service request rebuilt from its events, in memory and through stored JSON."""

from __future__ import annotations

import dataclasses
import json
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex

from domain.cases import NoteVisibility, ServiceRequest
from domain.cases import events as case_events
from domain.organisations import Organisation
from domain.policy import Policy
from domain.transcodings import register_domain_transcodings
from domain.values import Severity
from tests.unit.conftest import ADA, AGENT, Clock, OpenCase, record_unresponsive


def _full_lifecycle(case: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock) -> None:
    case.assign_agent("bob", by=AGENT, at=clock.tick())
    case.assign_severity(
        Severity.B, agreement=acme.agreement, policy=policy, by=AGENT, at=clock.tick()
    )
    case.respond(message_summary="Please send a trace", policy=policy, by=AGENT, at=clock.tick())
    case.add_note(
        "Likely the connector",
        visibility=NoteVisibility.INTERNAL,
        organisation=acme,
        by=AGENT,
        at=clock.tick(),
    )
    record_unresponsive(case, policy, clock)
    case.downgrade(Severity.C, policy=policy, reason="No trace sent", by=AGENT, at=clock.tick())
    case.resolve(
        reason="fixed", resolution="Connector re-enabled", policy=policy, by=AGENT, at=clock.tick()
    )
    case.record_satisfaction(5, comment=None, organisation=acme, by=ADA, at=clock.tick())
    case.reopen(reason="Broke again", policy=policy, organisation=acme, by=ADA, at=clock.tick())


def test_a_full_lifecycle_replays_to_the_same_state(
    case: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    _full_lifecycle(case, acme, policy, clock)
    recorded = case.collect_events()
    replayed: ServiceRequest | None = None
    for domain_event in recorded:
        replayed = domain_event.mutate(replayed)
    assert replayed == case
    assert [type(e).__name__ for e in recorded][-4:] == [
        "Resolved",
        "SurveyInvited",
        "SatisfactionRecorded",
        "Reopened",
    ]
    versions = {type(e).__name__: getattr(e, "class_version", None) for e in recorded}
    assert (versions.pop("Responded"), versions.pop("Opened", 5)) == (2, 5)
    assert versions.pop("Resolved") == 2
    assert set(versions.values()) == {1}


def test_events_round_trip_through_json_with_plain_strings_on_the_wire(
    case: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    _full_lifecycle(case, acme, policy, clock)
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    register_domain_transcodings(transcoder)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    stored = [mapper.to_stored_event(e) for e in case.collect_events()]
    assert b'"severity":"B"' in stored[2].state
    assert b'"role":"agent"' in stored[2].state
    replayed: ServiceRequest | None = None
    for record in stored:
        decoded = mapper.to_domain_event(record)
        assert isinstance(decoded, CanMutateAggregate)
        replayed = decoded.mutate(replayed)
    assert replayed == case
    assert isinstance(replayed, ServiceRequest) and replayed.severity is Severity.C


def _mapper() -> Mapper[UUID]:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    register_domain_transcodings(transcoder)
    return Mapper(transcoder=transcoder)


def test_a_response_stored_as_v1_reads_as_v2_with_an_unknown_channel(
    case: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    case.assign_severity(
        Severity.B, agreement=acme.agreement, policy=policy, by=AGENT, at=clock.tick()
    )
    case.respond(message_summary="Please send a trace", policy=policy, by=AGENT, at=clock.tick())
    mapper = _mapper()
    stored = [mapper.to_stored_event(e) for e in case.collect_events()]
    current = json.loads(stored[-1].state)
    assert (current["class_version"], current["via"]) == (2, "email")  # the preferred contact
    # What a v1 writer stored: no class_version, no via.
    v1_state = {k: v for k, v in current.items() if k not in ("class_version", "via")}
    stored[-1] = dataclasses.replace(stored[-1], state=json.dumps(v1_state).encode())
    replayed: ServiceRequest | None = None
    for record in stored:
        decoded = mapper.to_domain_event(record)
        assert isinstance(decoded, CanMutateAggregate)
        replayed = decoded.mutate(replayed)
    responded = mapper.to_domain_event(stored[-1])
    assert isinstance(responded, case_events.Responded)
    assert responded.via == case_events.UNKNOWN_VIA
    assert replayed == case  # the upcast changes nothing the aggregate keeps


V3_FIELDS = ("expected_response_at", "waiting_estimate", "support_line")


def test_an_opening_stored_as_v2_reads_as_v5_with_no_triage_severity(
    case: ServiceRequest, acme: Organisation
) -> None:
    mapper = _mapper()
    stored = [mapper.to_stored_event(e) for e in case.collect_events()]
    current = json.loads(stored[0].state)
    # The domain decided the triage target at opening: B, acme has a standard agreement.
    assert (current["class_version"], current["triage_severity"]) == (5, "B")
    v2_fields = ("triage_severity", *V3_FIELDS)
    v2_state = {k: v for k, v in current.items() if k not in v2_fields} | {"class_version": 2}
    stored[0] = dataclasses.replace(stored[0], state=json.dumps(v2_state).encode())
    opened = mapper.to_domain_event(stored[0])
    assert isinstance(opened, case_events.Opened)
    assert opened.triage_severity is None
    assert opened.mutate(None) == case  # the upcast changes nothing the aggregate keeps


def test_an_opening_stored_as_v3_reads_as_v5_with_no_promise(
    open_case: OpenCase, clock: Clock
) -> None:
    # An opening that made a promise, stored as v3 (before promises) and read back.
    case = open_case(waiting={}, at=clock.tick())
    mapper = _mapper()
    stored = mapper.to_stored_event(case.collect_events()[0])
    current = json.loads(stored.state)
    assert current["class_version"] == 5
    assert current["waiting_estimate"]["method"] == "policy_target"
    v3_state = {k: v for k, v in current.items() if k not in V3_FIELDS} | {"class_version": 3}
    opened = mapper.to_domain_event(
        dataclasses.replace(stored, state=json.dumps(v3_state).encode())
    )
    assert isinstance(opened, case_events.Opened)
    assert (opened.expected_response_at, opened.waiting_estimate) == (None, None)
    assert opened.support_line is None
    assert opened.triage_severity == "B"


def test_a_promise_survives_the_round_trip_through_stored_json(
    open_case: OpenCase, clock: Clock
) -> None:
    case = open_case(waiting={}, at=clock.tick())
    [recorded] = case.collect_events()
    mapper = _mapper()
    opened = mapper.to_domain_event(mapper.to_stored_event(recorded))
    assert isinstance(opened, case_events.Opened) and isinstance(recorded, case_events.Opened)
    assert opened.expected_response_at == recorded.expected_response_at is not None
    assert opened.waiting_estimate == recorded.waiting_estimate


def test_sla_relevant_events_record_the_policy_version(
    case: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    _full_lifecycle(case, acme, policy, clock)
    sla_events = (
        case_events.Opened,
        case_events.SeverityAssigned,
        case_events.Escalated,
        case_events.CustomerUnresponsive,
        case_events.Downgraded,
        case_events.Responded,
        case_events.Resolved,
        case_events.Reopened,
    )
    recorded = case.collect_events()
    assert {e.policy_version for e in recorded if isinstance(e, sla_events)} == {policy.version}
    assert all(e.timestamp == getattr(e, "at", None) for e in recorded)


def test_a_resolution_stored_as_v1_reads_as_v2_with_an_unspecified_reason(
    case: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> None:
    _full_lifecycle(case, acme, policy, clock)
    mapper = _mapper()
    stored = [mapper.to_stored_event(e) for e in case.collect_events()]
    at = next(i for i, e in enumerate(stored) if e.topic.endswith("Resolved"))
    current = json.loads(stored[at].state)
    assert (current["class_version"], current["reason"]) == (2, "fixed")
    # What a v1 writer stored: no class_version, no closure reason.
    dropped = ("class_version", "reason", "out_of_scope")
    v1_state = {k: v for k, v in current.items() if k not in dropped}
    stored[at] = dataclasses.replace(stored[at], state=json.dumps(v1_state).encode())
    replayed: ServiceRequest | None = None
    for record in stored:
        decoded = mapper.to_domain_event(record)
        assert isinstance(decoded, CanMutateAggregate)
        replayed = decoded.mutate(replayed)
    resolved = mapper.to_domain_event(stored[at])
    assert isinstance(resolved, case_events.Resolved)
    assert (resolved.reason, resolved.out_of_scope) == (case_events.UNSPECIFIED_REASON, False)
    assert replayed is not None and replayed.status == case.status  # reopened after it
