"""Property-based checks of the whole API against its own OpenAPI document.

Schemathesis generates valid and invalid requests for every operation; each answer
must be no 5xx, a status the document declares, and a body matching its schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis  # its pytest plugin (schema.parametrize) does not run on pytest 9: plain @given
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from api.roles import ROLE_MATRIX
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Role
from tests.integration.api_support import Api, open_case, register_acme, running_api
from tests.signing_key import new_signing_key_file

# The API is the same code over either server, whose storage the other suites cover on
# both; fuzzing it once, on the default server, keeps the suite inside its time budget.
pytestmark = pytest.mark.integration

# Prefer the role that gets furthest into each route (case work before reading).
PREFERENCE = (Role.AGENT, Role.ADMIN, Role.SUPERVISOR, Role.AUDITOR)
EXAMPLES = 15  # per operation and mode


@pytest.fixture(scope="module")
def api(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The API as deployed, with an audit signing key: without one, evidence bundles are
    refused with a 503 on purpose (test_audit_evidence.py), which is no promise broken."""
    key_file = new_signing_key_file(tmp_path_factory.mktemp("audit-key"))
    settings = Settings(database_url=database.url, audit_signing_key_file=key_file)
    with running_api(database, settings=settings) as running:
        yield running


@pytest.fixture(scope="module")
def existing(api: Api) -> dict[str, str]:
    """An organisation and a case, so generated requests also reach the domain's rules."""
    with TestClient(api.app) as client:
        organisation_id = register_acme(client, api)
        return {
            "organisation_id": organisation_id,
            "case_id": open_case(client, api, organisation_id),
        }


@pytest.fixture(scope="module")
def api_schema(api: Api) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", api.app)


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Probes, the pipeline's status and the metrics take no input: nothing invalid to send.
WITHOUT_INPUT = {"pipeline_status", "metrics"}
RUNS = [(name, GenerationMode.POSITIVE) for name in [*ROLE_MATRIX, "healthz", "readyz"]] + [
    (name, GenerationMode.NEGATIVE) for name in ROLE_MATRIX if name not in WITHOUT_INPUT
]


@pytest.mark.parametrize(("operation_id", "mode"), RUNS, ids=[f"{n}-{m.value}" for n, m in RUNS])
def test_the_api_keeps_its_openapi_promises(
    operation_id: str,
    mode: GenerationMode,
    api_schema: Any,
    api: Api,
    existing: dict[str, str],
) -> None:
    operation = api_schema.find_operation_by_id(operation_id)
    allowed = ROLE_MATRIX.get(operation_id)
    headers = api.as_(next(r for r in PREFERENCE if r in allowed)) if allowed else {}

    @seed(20251125)  # the same examples every run: a failure here is reproducible
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        for name, real in existing.items():
            generated = (case.path_parameters or {}).get(name)
            # Half of the well-formed ids name things that exist, to reach the domain.
            if isinstance(generated, str) and _is_uuid(generated) and uuid.UUID(generated).int % 2:
                case.path_parameters[name] = real
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
