"""Where a command came from, in the audit log (pure): the entry fields the optional origin
headers fill, and hashes that cover them only when present."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from projections.audit.bundle import entry_line
from projections.audit.chain import ORIGIN_FIELDS, first_break
from projections.audit.entries import make_entry

CASE, ORG = "3f0c1a52-7d4e-4a53-9a8e-1d2c3b4a5f60", "8a1e3192-3b06-425a-a793-3bef743bec14"
AT = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
OPENED = {
    "at": AT.isoformat(),
    "by": {"principal_id": "bob", "role": "agent", "channel": "phone"},
    "organisation_id": ORG,
    "category": "technical",
}
FROM_API = {"api_key_id": "5b1e9c", "client_address": "10.1.2.3", "request_id": "req-42"}
# The hash this entry had before origins were recorded (computed with that code): entries
# without an origin must keep it, or every log written before would stop verifying.
HASH_BEFORE_ORIGINS = "059cdff43039555a36aafd61e405cfbb797d4866b6ffaea1f25ccb08d4c98ab7"


def opened(origin: dict[str, str] | None = None) -> dict[str, Any]:
    entry, _ = make_entry(
        event_id=f"{CASE}:1",
        event_type="casebook.case.opened.v2",
        subject=CASE,
        recorded_at=AT,
        data=OPENED,
        head=None,
        origin=origin,
    )
    return entry


def breaks(entry: dict[str, Any]) -> str | None:
    found = first_break("case", CASE, [entry], head=(1, opened(FROM_API)["hash"]))
    return found.reason if found is not None else None


def test_an_entry_without_origin_keeps_the_hash_it_had_before_origins_were_recorded() -> None:
    entry = opened()
    assert {name: entry[name] for name in ORIGIN_FIELDS} == dict.fromkeys(ORIGIN_FIELDS)
    assert entry["hash"] == HASH_BEFORE_ORIGINS
    assert not set(ORIGIN_FIELDS) & set(_line(entry))


def test_an_entry_records_the_api_key_client_address_and_request_id_under_its_hash() -> None:
    entry = opened(FROM_API)
    assert {name: entry[name] for name in ORIGIN_FIELDS} == FROM_API
    assert entry["hash"] != HASH_BEFORE_ORIGINS
    assert breaks(entry) is None
    line = _line(entry)
    assert {name: line[name] for name in ORIGIN_FIELDS} == FROM_API


def test_changing_adding_or_removing_an_origin_field_breaks_the_chain() -> None:
    for name in ORIGIN_FIELDS:
        changed = opened(FROM_API) | {name: "203.0.113.66"}
        removed = opened(FROM_API) | {name: None}
        assert breaks(changed) == "its content does not match its hash", name
        assert breaks(removed) == "its content does not match its hash", name
    added = opened() | {"client_address": "10.1.2.3"}
    assert first_break("case", CASE, [added]) is not None


def _line(entry: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(entry_line(entry | {"entry_id": 1})))
