"""Pieces every topic's schema is built from: JSON Schema draft, ids, header texts."""

from __future__ import annotations

from typing import Any

SCHEMA_BASE = "https://casebook.example/schemas/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Kafka headers are bytes; CloudEvents extension values travel as strings.
DECIMAL = "^(0|[1-9][0-9]*)$"
# How a reader of any casebook topic tells a lost record from a repeated one: every key's
# `ce_sequence` runs 1, 2, ... with no gaps (case events: the version; outbox topics: the
# outbox's per-subject sequence).
GAP_RULE = (
    "Per key, the next record's sequence must be the last one's plus 1: a higher one means "
    "a record is missing (a gap), a lower or equal one is a duplicate to drop."
)


def without_property_titles(schema: Any) -> Any:
    """Drop pydantic's generated property titles ("Organisation Id"): noise for readers."""
    if isinstance(schema, dict):
        cleaned = {key: without_property_titles(value) for key, value in schema.items()}
        if isinstance(cleaned.get("properties"), dict):
            for prop in cleaned["properties"].values():
                prop.pop("title", None)
        return cleaned
    if isinstance(schema, list):
        return [without_property_titles(item) for item in schema]
    return schema


def text(description: str, **rules: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **rules}


def kafka_message(
    kind: str, *, title: str, summary: str, headers: str, key: dict[str, Any]
) -> dict[str, Any]:
    """An AsyncAPI message of type `kind`: its headers schema (`components/schemas/<headers>`)
    with `ce_type` fixed to the kind, its payload schema file and its Kafka key."""
    return {
        "name": kind,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": f"#/components/schemas/{headers}"},
                {"properties": {"ce_type": {"const": kind}}},
            ]
        },
        "payload": {"$ref": f"events/{kind}.json"},
        "bindings": {"kafka": {"key": key, "bindingVersion": "0.5.0"}},
    }
