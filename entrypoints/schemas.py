"""`schemas/`: the JSON Schemas and the AsyncAPI document of every topic casebook writes.

Generated from the code (`casebook schemas write`) and checked against it in the tests
(`casebook schemas check`): the case events' contract (`contract`), the SLA tracker's
events (`projections.sla.schema`) and the audit checkpoints (`projections.audit.schema`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contract.case_event_schemas import headers_schema, json_schema, message, retired_json_schema
from contract.case_events import EVENT_CLASSES, RETIRED_TYPES, TOPIC
from contract.schema_parts import GAP_RULE
from projections.audit.checkpoint import EVENT_TYPE as CHECKPOINT_TYPE
from projections.audit.schema import CHECKPOINT_TOPIC, checkpoint_json_schema, checkpoint_message
from projections.sla.schema import (
    SLA_EVENT_TYPES,
    SLA_TOPIC,
    sla_headers,
    sla_json_schema,
    sla_message,
)


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0 description of the case-events and SLA-events topics and their messages."""
    messages = {kind: message(kind, cls) for kind, cls in EVENT_CLASSES.items()}
    sla_messages = {kind: sla_message(kind) for kind in SLA_EVENT_TYPES}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "casebook events",
            "version": "1.3.0",
            "description": "Every event recorded for service requests (cases), "
            "organisations and service incidents, published by casebook's relay in the "
            "order of the event store; "
            "and every SLA clock transition, published by the SLA tracker.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "caseEvents": {
                "address": TOPIC,
                "title": "Case, organisation and service incident events",
                "description": "The topic is `<prefix>.case-events.v1`: the prefix is the "
                "deployment's topic prefix setting (CASEBOOK_TOPIC_PREFIX), `casebook` by "
                "default as in this address. Payloads carry no secrets, and no personal data "
                "unless the deployment publishes it (CASEBOOK_RELAY_INCLUDE_PERSONAL_DATA; "
                "see each payload schema). Events recorded by a command sent through the API "
                "carry where it came from in optional headers (API key id, client address, "
                "request id); consumers must accept records without them. Each key's "
                "`ce_sequence` is its version, contiguous from 1: " + GAP_RULE,
                "messages": {kind: {"$ref": f"#/components/messages/{kind}"} for kind in messages},
            },
            "auditCheckpoints": {
                "address": CHECKPOINT_TOPIC,
                "title": "Signed audit checkpoints",
                "description": "The topic is `<prefix>.audit-checkpoints.v1`. One message per "
                "checkpoint the audit trail signs over its log, each published exactly once; "
                "auditors keep them to check evidence bundles against. The key's "
                "`ce_sequence` is contiguous from 1: " + GAP_RULE,
                "messages": {CHECKPOINT_TYPE: {"$ref": f"#/components/messages/{CHECKPOINT_TYPE}"}},
            },
            "slaEvents": {
                "address": SLA_TOPIC,
                "title": "SLA clock transitions",
                "description": "The topic is `<prefix>.sla-events.v1`. One message per "
                "transition of a case's SLA clock (initial response; follow-up where the "
                "policy sets a cadence), each published exactly once. Each key's "
                "`ce_sequence` is contiguous from 1: " + GAP_RULE,
                "messages": {
                    kind: {"$ref": f"#/components/messages/{kind}"} for kind in sla_messages
                },
            },
        },
        "operations": {
            "publishCaseEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/caseEvents"},
                "summary": "The relay publishes every recorded event once it is committed.",
                "messages": [{"$ref": f"#/channels/caseEvents/messages/{k}"} for k in messages],
            },
            "publishAuditCheckpoints": {
                "action": "send",
                "channel": {"$ref": "#/channels/auditCheckpoints"},
                "summary": "The audit trail publishes each signed checkpoint from its outbox.",
                "messages": [{"$ref": f"#/channels/auditCheckpoints/messages/{CHECKPOINT_TYPE}"}],
            },
            "publishSlaEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/slaEvents"},
                "summary": "The SLA tracker publishes each clock transition from its outbox.",
                "messages": [{"$ref": f"#/channels/slaEvents/messages/{k}"} for k in sla_messages],
            },
        },
        "components": {
            "schemas": {
                **{
                    f"{a}EventHeaders": headers_schema(a)
                    for a in ("case", "organisation", "incident")
                },
                "slaEventHeaders": sla_headers(),
            },
            "messages": messages | sla_messages | {CHECKPOINT_TYPE: checkpoint_message()},
        },
    }


def _render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """Every schema file the code defines, by path relative to the schemas directory."""
    files = {
        f"events/{kind}.json": _render(json_schema(cls)) for kind, cls in EVENT_CLASSES.items()
    }
    files |= {f"events/{kind}.json": _render(sla_json_schema(kind)) for kind in SLA_EVENT_TYPES}
    files |= {f"events/{kind}.json": _render(retired_json_schema(kind)) for kind in RETIRED_TYPES}
    files[f"events/{CHECKPOINT_TYPE}.json"] = _render(checkpoint_json_schema())
    files["asyncapi.json"] = _render(asyncapi_document())
    return dict(sorted(files.items()))


def _stale(directory: Path, files: dict[str, str]) -> list[str]:
    found = sorted(p.relative_to(directory).as_posix() for p in directory.glob("events/*.json"))
    return [path for path in found if path not in files]


def write_schemas(directory: Path) -> list[Path]:
    """Write the schema files under `directory`, removing event schemas no longer defined."""
    files = generated_files()
    for stale in _stale(directory, files):
        (directory / stale).unlink()
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def drift(directory: Path) -> dict[str, str]:
    """Files under `directory` that differ from the code, with what is wrong with each."""
    files = generated_files()
    found: dict[str, str] = {}
    for relative, text in files.items():
        path = directory / relative
        if not path.is_file():
            found[relative] = "is missing"
        elif path.read_text(encoding="utf-8") != text:
            found[relative] = "differs from the code"
    for relative in _stale(directory, files):
        found[relative] = "is no longer generated by the code"
    return dict(sorted(found.items()))
