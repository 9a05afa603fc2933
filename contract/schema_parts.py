"""Pieces every topic's schema is built from: JSON Schema draft, ids, header texts."""

from __future__ import annotations

from typing import Any

SCHEMA_BASE = "https://casebook.example/schemas/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Kafka headers are bytes; CloudEvents extension values travel as strings.
DECIMAL = "^(0|[1-9][0-9]*)$"


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
