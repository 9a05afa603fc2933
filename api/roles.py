"""Who may call which route: the role matrix as data.

Keys are route names (FastAPI's `name`, also the OpenAPI operationId). The request
guard in `api.deps` refuses any role not listed, and a route missing here is refused
to everyone, so a new route stays closed until someone decides who may use it.
`tests/integration/test_api_roles.py` checks every route of the app against this
table, and docs/api.md's role table is generated from it by `role_table`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from domain.values import Role

AGENT, SUPERVISOR, AUDITOR, ANALYST, ADMIN, PORTAL = (
    Role.AGENT,
    Role.SUPERVISOR,
    Role.AUDITOR,
    Role.ANALYST,
    Role.ADMIN,
    Role.PORTAL,
)
API_ROLES: tuple[Role, ...] = (AGENT, SUPERVISOR, AUDITOR, ANALYST, ADMIN, PORTAL)

CASE_WORKERS = frozenset({AGENT, SUPERVISOR})
CASE_READERS = CASE_WORKERS | {AUDITOR}
ORGANISATION_READERS = CASE_READERS | {ADMIN}
ORGANISATION_EDITORS = frozenset({SUPERVISOR, ADMIN})
# The customer portal acts for one customer admin per request (api.portal), on that
# admin's organisations' objects only, and sees cases as the customer does.
WITH_PORTAL = frozenset({PORTAL})

# Routes that must answer while the database is down, for a key verified in the last
# KEY_MEMORY_SECONDS (see `api.deps.authorize`): the pipeline's status says what is down.
ANSWERS_WITHOUT_DATABASE: frozenset[str] = frozenset({"pipeline_status"})
KEY_MEMORY_SECONDS = 900.0

# Routes that send or check a caller's one-time code: limited apart (PIN attempts).
PIN_ROUTES: frozenset[str] = frozenset(
    {"request_caller_verification", "confirm_caller_verification"}
)

# Routes anyone may call without a key: liveness, readiness and the API's own docs.
PUBLIC_ROUTES: frozenset[str] = frozenset(
    {"healthz", "readyz", "openapi", "swagger_ui_html", "swagger_ui_redirect", "redoc_html"}
)

# Routes public unless the setting named here asks for a key; then the matrix applies.
KEY_OPTIONAL_ROUTES: Mapping[str, str] = {"metrics": "CASEBOOK_METRICS_REQUIRE_KEY"}

ROLE_MATRIX: Mapping[str, frozenset[Role]] = {
    # organisations
    "register_organisation": frozenset({ADMIN}),
    "get_organisation": ORGANISATION_READERS | WITH_PORTAL,
    "add_organisation_admin": ORGANISATION_EDITORS,
    "remove_organisation_admin": ORGANISATION_EDITORS,
    "register_organisation_contact": ORGANISATION_EDITORS,
    "remove_organisation_contact": ORGANISATION_EDITORS,
    "change_agreement": ORGANISATION_EDITORS,
    "change_purchase_channel": ORGANISATION_EDITORS,
    "change_locale": ORGANISATION_EDITORS,
    "list_organisation_cases": CASE_READERS | WITH_PORTAL,
    "request_caller_verification": CASE_WORKERS,
    "confirm_caller_verification": CASE_WORKERS,
    "get_caller_verification": CASE_WORKERS,
    # the support phone lines (§2): public numbers, for everyone who may call the API
    "list_support_lines": frozenset(API_ROLES),
    # cases
    "open_case": CASE_WORKERS | WITH_PORTAL,
    "get_case": CASE_READERS | WITH_PORTAL,
    "get_case_timeline": CASE_WORKERS | WITH_PORTAL,
    "get_case_history": frozenset({AUDITOR}),
    "assign_severity": CASE_WORKERS,
    "escalate_severity": CASE_WORKERS,
    "downgrade_severity": CASE_WORKERS,
    "record_customer_unresponsive": CASE_WORKERS,
    "respond_to_customer": CASE_WORKERS,
    "assign_agent": CASE_WORKERS,
    "add_note": CASE_WORKERS | WITH_PORTAL,
    "resolve_case": CASE_WORKERS,
    "reopen_case": CASE_WORKERS,
    "link_case_to_incident": CASE_WORKERS,
    # survey answers: the customer admin through the portal, or imported by a platform admin
    "record_satisfaction": frozenset({ADMIN, PORTAL}),
    # service health (§1): supervisors manage incidents (a domain rule too); incidents
    # belong to no organisation, so the portal reads them all
    "declare_incident": frozenset({SUPERVISOR}),
    "get_incident": CASE_WORKERS | WITH_PORTAL,
    "update_incident": frozenset({SUPERVISOR}),
    "close_incident": frozenset({SUPERVISOR}),
    "service_health": CASE_WORKERS | WITH_PORTAL,
    # personal data: the platform admin answers erasure and access requests
    "erase_personal_data": frozenset({ADMIN}),
    "export_subject_data": frozenset({ADMIN}),
    # SLA, as tracked by the SLA consumer
    "agent_queue": CASE_WORKERS,
    "get_case_sla": CASE_READERS,
    "sla_compliance_report": frozenset({SUPERVISOR, AUDITOR, ANALYST}),
    "satisfaction_report": frozenset({SUPERVISOR, ANALYST}),
    # the audit trail, for compliance auditors only
    "audit_timeline": frozenset({AUDITOR}),
    "audit_case_state": frozenset({AUDITOR}),
    "audit_case_diff": frozenset({AUDITOR}),
    "verify_case_audit": frozenset({AUDITOR}),
    "verify_audit_log": frozenset({AUDITOR}),
    "list_access_records": frozenset({AUDITOR}),
    "export_case_evidence": frozenset({AUDITOR}),
    "export_organisation_evidence": frozenset({AUDITOR}),
    # operations: the state of the relay, consumers and timers (no case data)
    "pipeline_status": frozenset({ADMIN, SUPERVISOR}),
    "metrics": frozenset({ADMIN, SUPERVISOR}),
}


def is_allowed(route_name: str, role: Role) -> bool:
    """True when `role` may call the route; unknown routes allow nobody."""
    return role in ROLE_MATRIX.get(route_name, frozenset())


class Endpoint(NamedTuple):
    """One route of the app as a client sees it."""

    name: str
    method: str
    path: str


def endpoints(routes: Sequence[BaseRoute]) -> list[Endpoint]:
    """Every HTTP route of an app (`app.routes`), included routers flattened."""
    found = []
    for route in iter_route_contexts(routes):
        if route.name is None or route.path is None or not route.methods:
            continue
        method = sorted(route.methods - {"HEAD"} or route.methods)[0]
        found.append(Endpoint(route.name, method, route.path))
    return found


def role_table(routes: Sequence[BaseRoute]) -> str:
    """The role matrix as a Markdown table, one row per route of the app, in matrix order."""
    by_name = {endpoint.name: endpoint for endpoint in endpoints(routes)}
    header = ["route", *(role.value for role in API_ROLES)]
    lines = [_row(header), _row(["---"] * len(header))]
    for name, allowed in ROLE_MATRIX.items():
        if name in by_name:
            endpoint = by_name[name]
            marks = ["✓" if role in allowed else "" for role in API_ROLES]
            lines.append(_row([f"`{endpoint.method} {endpoint.path}`", *marks]))
    public = sorted(e.path for e in by_name.values() if e.name in PUBLIC_ROUTES)
    lines.append("")
    lines.append("Without a key: " + ", ".join(f"`{path}`" for path in public) + ".")
    for name, setting in KEY_OPTIONAL_ROUTES.items():
        if name in by_name:
            path = by_name[name].path
            lines.append(f"`{path}` needs no key either, unless `{setting}` is true.")
    return "\n".join(lines) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
