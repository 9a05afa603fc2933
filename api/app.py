"""The FastAPI application: routers, the request guard, problem+json, request ids."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from api import problems, roles
from api.deps import GuardedRoute
from api.keys import KeyStore
from api.metrics import registry_with
from api.middleware import RequestContext
from api.rate_limits import RateLimits
from api.read_models import ReadModels
from api.request_limits import RequestLimits
from api.routes import (
    audit,
    cases,
    evidence,
    health,
    incidents,
    organisations,
    privacy,
    sla,
    support_lines,
)
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from messaging.notifications import Notifier, notifier_from
from projections.metrics import DatabaseCollector

DESCRIPTION = """\
Event-sourced case management for the support desk. Every command is one route;
send your API key as `Authorization: Bearer <key>`. Errors are RFC 9457
`application/problem+json` naming the refused `rule`. Use `If-Match: "<version>"`
(from a read's ETag) against lost updates and `Idempotency-Key` for safe retries.
"""
TAGS = [
    {"name": "organisations", "description": "Customer organisations and their profile."},
    {"name": "cases", "description": "Service requests, from opening to satisfaction."},
    {"name": "sla", "description": "The agent queue, SLA clocks and compliance, as tracked."},
    {"name": "audit", "description": "For compliance auditors: the audit trail and evidence."},
    {"name": "health", "description": "Probes for orchestrators; no key needed."},
]


def create_app(
    casebook: Casebook,
    keys: KeyStore,
    database: Database,
    settings: Settings,
    read_models: ReadModels,
    *,
    notifier: Notifier | None = None,
    shared_metrics_dir: Path | None = None,
) -> FastAPI:
    """The HTTP API over `casebook`, authenticating with `keys`, probing `database`,
    reading the projections through `read_models` (closed when the app shuts down).

    Everything comes from the caller (the composition root, or a test): the app builds
    no service of its own. Without a `notifier`, messages go where `settings.notifier`
    says (the embedded table through the read models' pool, by default). With
    `shared_metrics_dir`, `/metrics` answers for every API process writing there.
    """
    app = FastAPI(
        title="casebook",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.casebook = casebook
    app.state.keys = keys
    app.state.database = database
    app.state.settings = settings
    app.state.read_models = read_models
    app.state.notifier = notifier or notifier_from(settings, read_models.connection)
    app.state.metrics = registry_with(
        DatabaseCollector(database.url), shared_dir=shared_metrics_dir
    )
    app.router.add_event_handler("shutdown", app.state.read_models.close)
    app.include_router(cases.router)
    app.include_router(organisations.router)
    app.include_router(support_lines.router)
    app.include_router(incidents.router)
    app.include_router(sla.router)
    app.include_router(audit.router)
    app.include_router(evidence.router)
    app.include_router(privacy.router)
    app.include_router(health.router)
    app.include_router(health.status_router)
    app.include_router(health.metrics_router(settings.metrics_require_key))
    problems.install(app)
    app.state.rate_limits = RateLimits(settings)
    # Added first, so it runs inside RequestContext (request ids, security headers).
    app.add_middleware(RequestLimits, settings=settings, limits=app.state.rate_limits)
    app.add_middleware(RequestContext)
    _require_complete_role_matrix(app)
    _serve_problem_media_type(app)
    return app


def _require_complete_role_matrix(app: FastAPI) -> None:
    """Refuse to start with a route that the role matrix does not mention."""
    for route in iter_route_contexts(app.routes):
        name = route.name or ""
        if isinstance(route.original_route, GuardedRoute):
            if name not in roles.ROLE_MATRIX:
                raise RuntimeError(f"route {name} is missing from api.roles.ROLE_MATRIX")
        elif name not in roles.PUBLIC_ROUTES | roles.KEY_OPTIONAL_ROUTES.keys():
            raise RuntimeError(f"route {name} is neither guarded nor public")


def _serve_problem_media_type(app: FastAPI) -> None:
    """Document error bodies as application/problem+json, the type they are sent with."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[:1] in "45" and "application/json" in content:
                        response["content"] = {problems.MEDIA_TYPE: content["application/json"]}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    try:
        return version("casebook")
    except PackageNotFoundError:
        return "0.0.0"
