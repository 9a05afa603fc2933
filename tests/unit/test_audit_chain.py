"""Audit entries and their hash chains (pure): what an entry records, what breaks a chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from projections.audit.chain import GENESIS, entry_hash, first_break
from projections.audit.entries import Head, make_entry

CASE, ORG = "3f0c1a52-7d4e-4a53-9a8e-1d2c3b4a5f60", "8a1e3192-3b06-425a-a793-3bef743bec14"
AT = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
AGENT = {"principal_id": "bob", "role": "agent", "channel": "api"}


def chain(*events: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    head: Head | None = None
    entries = []
    for n, (kind, data) in enumerate(events, start=1):
        entry, head = make_entry(
            event_id=f"{CASE}:{n}",
            event_type=f"casebook.case.{kind}.v1",
            subject=CASE,
            recorded_at=AT,
            data={"at": AT.isoformat(), "by": AGENT, **data},
            head=head,
        )
        entries.append(entry)
    return entries


def three() -> list[dict[str, Any]]:
    return chain(
        ("opened", {"organisation_id": ORG, "category": "technical"}),
        ("severity_assigned", {"severity": "B", "policy_version": "2025.1"}),
        ("escalated", {"severity": "A", "policy_version": "2025.1"}),
    )


def test_an_entry_records_who_what_when_where_and_the_fields_changed() -> None:
    entries = three()
    escalated = entries[2]
    assert (escalated["actor_id"], escalated["actor_role"], escalated["channel"]) == (
        "bob",
        "agent",
        "api",
    )
    assert escalated["organisation_id"] == ORG  # known from the opening
    assert escalated["changes"] == {"severity": ["B", "A"]}
    assert entries[0]["changes"]["category"] == [None, "technical"]
    assert entries[0]["prev_hash"] == GENESIS
    assert [e["prev_hash"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]


def test_an_intact_chain_verifies() -> None:
    entries = three()
    assert first_break("case", CASE, entries, head=(3, entries[-1]["hash"])) is None


def test_an_edited_entry_is_named_with_its_position() -> None:
    entries = three()
    entries[1] = {**entries[1], "actor_id": "mallory"}
    found = first_break("case", CASE, entries)
    assert found is not None and found.seq == 2
    assert "content does not match its hash" in found.reason


def test_a_deleted_entry_is_named() -> None:
    entries = three()
    del entries[1]
    found = first_break("case", CASE, entries)
    assert found is not None and found.seq == 3 and "entry 2 is missing" in found.reason


def test_an_entry_deleted_from_the_end_is_found_through_the_head() -> None:
    entries = three()
    found = first_break("case", CASE, entries[:2], head=(3, entries[-1]["hash"]))
    assert found is not None and "recorded head is entry 3" in found.reason


def test_an_inserted_copy_is_named() -> None:
    entries = three()
    entries.insert(2, dict(entries[1]))
    found = first_break("case", CASE, entries)
    assert found is not None and found.seq == 2 and "appears again" in found.reason


def test_reordered_entries_break_the_link() -> None:
    entries = three()
    second, third = entries[1], entries[2]
    entries[1], entries[2] = {**third, "seq": 2}, {**second, "seq": 3}
    found = first_break("case", CASE, entries)
    assert found is not None and found.seq == 2 and "does not link" in found.reason


def test_the_hash_covers_every_recorded_field() -> None:
    entry = three()[0]
    for name in ("event_type", "occurred_at", "outcome", "changes", "channel"):
        changed = {**entry, name: "x"}
        assert entry_hash(changed) != entry["hash"], name
