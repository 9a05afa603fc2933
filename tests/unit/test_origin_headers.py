"""The optional origin headers of a published record: present only when the command that
recorded the event had an origin, and within the published header contract either way."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from casebook.commands import Origin
from contract.case_events import ORIGIN_HEADERS
from domain.cases import ServiceRequest
from entrypoints.schemas import asyncapi_document
from relay.cloudevents import record_for


def test_a_record_carries_only_the_origin_headers_it_has(case: ServiceRequest) -> None:
    event = case.pending_events[-1]

    def headers(origin: Origin | None) -> dict[str, str]:
        record = record_for(event, 7, source="/test", include_personal=False, origin=origin)
        return {name: value.decode() for name, value in record.headers}

    plain = headers(None)
    full = headers(Origin("5b1e9c", "10.1.2.3", "req-42"))
    partial = headers(Origin("5b1e9c", None, None))

    assert not set(ORIGIN_HEADERS) & set(plain)
    assert full == plain | {
        "ce_casebookclient": "5b1e9c",
        "ce_casebookaddress": "10.1.2.3",
        "ce_casebookrequestid": "req-42",
    }
    assert partial == plain | {"ce_casebookclient": "5b1e9c"}
    # Both shapes keep the published header contract; the origin headers are optional.
    schema = asyncapi_document()["components"]["schemas"]["caseEventHeaders"]
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for shape in (plain, full, partial):
        validator.validate(shape)
    assert not set(ORIGIN_HEADERS) & set(schema["required"])
    assert all(name.removeprefix("ce_").isalnum() for name in ORIGIN_HEADERS)
    assert all(name.removeprefix("ce_").islower() for name in ORIGIN_HEADERS)
