"""Commands sent over HTTP are stored with where they came from: key, address, request id."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from structlog.testing import capture_logs

from casebook.commands import Origin
from casebook.database import Database
from casebook.settings import Settings
from casebook.store import CasebookRecorder
from domain.values import Role
from entrypoints.cli.serve import forwarded_header_options
from tests.integration.api_support import Api, open_case, register_acme, running_api, serving

pytestmark = pytest.mark.integration


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


def stored_origins(api: Api) -> dict[tuple[str, int], Origin | None]:
    """The origin stored for each event, by (aggregate id, version)."""
    recorder = api.casebook.store.recorder
    assert isinstance(recorder, CasebookRecorder)
    return {
        (str(n.originator_id), n.originator_version): n.origin
        for n in recorder.select_with_origins(1, 100)
    }


def key_id(api: Api, role: Role) -> str:
    [key] = [k for k in api.keys.list() if k.principal_id == api.principals[role]]
    return key.key_id


def test_every_command_route_stores_the_api_key_client_address_and_request_id(
    api: Api,
) -> None:
    with serving(api.app) as url, httpx.Client(base_url=url) as client:
        organisation = register_acme(client, api)  # a route that calls `run` itself
        case_id = open_case(client, api, organisation)  # so is this one
        noted = client.post(
            f"/cases/{case_id}/notes",
            json={"text": "Checked the MX record", "visibility": "internal"},
            headers=api.as_(Role.AGENT, **{"X-Request-ID": "ticket-4711.note"}),
        )
        assert noted.status_code == 200, noted.text

    found = stored_origins(api)
    admin, agent = key_id(api, Role.ADMIN), key_id(api, Role.AGENT)
    registered, opened, note = (found[k] for k in ((organisation, 1), (case_id, 1), (case_id, 2)))
    assert registered is not None and opened is not None and note is not None
    assert (registered.api_key_id, registered.client_address) == (admin, "127.0.0.1")
    assert (opened.api_key_id, opened.client_address) == (agent, "127.0.0.1")
    assert opened.request_id and opened.request_id != registered.request_id  # made up per request
    assert (note.api_key_id, note.client_address, note.request_id) == (
        agent,
        "127.0.0.1",
        "ticket-4711.note",
    )


def recorded_address(api: Api, trusted_proxies: str) -> str | None:
    """The address stored for a note sent from 127.0.0.1 claiming to be forwarded."""
    options = forwarded_header_options(
        Settings(database_url="postgresql://unused", api_trusted_proxies=trusted_proxies)
    )
    with serving(api.app, **options) as url, httpx.Client(base_url=url) as client:
        case_id = open_case(client, api, register_acme(client, api))
        noted = client.post(
            f"/cases/{case_id}/notes",
            json={"text": "Called back", "visibility": "internal"},
            headers=api.as_(Role.AGENT, **{"X-Forwarded-For": "203.0.113.9"}),
        )
        assert noted.status_code == 200, noted.text
    origin = stored_origins(api)[(case_id, 2)]
    assert origin is not None
    return origin.client_address


def test_a_forwarded_address_is_not_believed_from_a_proxy_nobody_trusted(api: Api) -> None:
    assert recorded_address(api, trusted_proxies="") == "127.0.0.1"


def test_a_trusted_proxy_passes_on_the_client_address(api: Api) -> None:
    assert recorded_address(api, trusted_proxies="127.0.0.1") == "203.0.113.9"


def test_a_commands_events_keep_the_trace_of_the_request_that_sent_it(api: Api) -> None:
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with serving(api.app) as url, httpx.Client(base_url=url) as client:
        case_id = open_case(client, api, register_acme(client, api))
        with capture_logs() as logs:
            noted = client.post(
                f"/cases/{case_id}/notes",
                json={"text": "Checked the MX record", "visibility": "internal"},
                headers=api.as_(Role.AGENT, traceparent=caller, tracestate="congo=t61rcWkgMzE"),
            )
        assert noted.status_code == 200, noted.text

    found = stored_origins(api)
    opened, note = found[(case_id, 1)], found[(case_id, 2)]
    assert opened is not None and note is not None
    # The note's request joined the caller's trace with a span of its own.
    _, trace_id, span_id, flags = (note.traceparent or "").split("-")
    assert (trace_id, flags) == ("4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id != "00f067aa0ba902b7"
    assert note.tracestate == "congo=t61rcWkgMzE"
    # The opening's request sent no trace: the API started one, not sampled, without state.
    assert opened.traceparent is not None and opened.traceparent.endswith("-00")
    assert opened.traceparent.split("-")[1] != trace_id and opened.tracestate is None
    [access] = [line for line in logs if line["event"] == "http.request"]
    assert access["trace_id"] == trace_id
