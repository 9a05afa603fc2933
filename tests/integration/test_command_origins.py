"""Where commands came from, kept by the write side with their events and read back with them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.errors import VersionConflict
from casebook.settings import Settings
from casebook.store import CasebookRecorder
from casebook.writer_process import writer_service
from domain.cases.state import NoteVisibility
from domain.values import Severity
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.write_side import AGENT, open_request, register_organisation

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

FROM_API = c.Origin(api_key_id="5b1e9c", client_address="10.1.2.3", request_id="req-1")


@pytest.fixture
def casebook(clean_database: Database) -> Iterator[Casebook]:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    yield casebook
    casebook.close()


def from_api(origin: c.Origin = FROM_API, **guards: Any) -> c.CommandContext:
    return c.CommandContext(AGENT, origin=origin, **guards)


def origins(casebook: Casebook) -> dict[tuple[str, int], c.Origin | None]:
    """Every stored event's origin as the relay reads it, by (aggregate id, version)."""
    recorder = casebook.store.recorder
    assert isinstance(recorder, CasebookRecorder)
    return {
        (str(n.originator_id), n.originator_version): n.origin
        for n in recorder.select_with_origins(1, 10_000)
    }


def note(case_id: Any, text: str) -> c.AddNote:
    return c.AddNote(case_id, text, NoteVisibility.INTERNAL)


def test_a_commands_origin_is_read_back_with_its_event_and_others_have_none(
    casebook: Casebook,
) -> None:
    organisation = register_organisation(casebook)
    case_id = open_request(casebook, organisation)  # as the command line would: no origin

    casebook.execute(c.AssignSeverity(case_id, Severity.B), from_api())
    casebook.execute(note(case_id, "checked the MX record"), from_api(c.Origin("k2", None, None)))

    assert origins(casebook) == {
        (str(organisation), 1): None,
        (str(case_id), 1): None,
        (str(case_id), 2): FROM_API,
        (str(case_id), 3): c.Origin("k2", None, None),
    }


def test_commands_saved_together_keep_their_own_origins(casebook: Casebook) -> None:
    organisation = register_organisation(casebook)
    cases = [open_request(casebook, organisation) for _ in range(3)]

    done = casebook.execute_together(
        [
            (note(case_id, "together"), from_api(c.Origin(f"key-{n}", f"10.0.0.{n}", f"r{n}")))
            for n, case_id in enumerate(cases)
        ]
    )

    assert [future.result().version for future in done] == [2, 2, 2]
    found = origins(casebook)
    assert [found[(str(case_id), 2)] for case_id in cases] == [
        c.Origin(f"key-{n}", f"10.0.0.{n}", f"r{n}") for n in range(3)
    ]


def test_a_refused_command_leaves_no_origin_behind(
    casebook: Casebook, clean_database: Database
) -> None:
    case_id = open_request(casebook, register_organisation(casebook))

    with pytest.raises(VersionConflict):
        casebook.execute(note(case_id, "stale"), from_api(expected_version=7))

    with psycopg.connect(clean_database.url) as conn:
        assert conn.execute("SELECT count(*) FROM casebook_command_origins").fetchone() == (0,)


def test_the_origin_travels_with_the_command_to_the_writer_process(
    casebook: Casebook, clean_database: Database
) -> None:
    settings = Settings(database_url=clean_database.url)
    with writer_service(casebook) as service:
        api_process = Casebook.connect(clean_database, settings, writer_address=service.address)
        try:
            case_id = open_request(api_process, register_organisation(api_process))
            api_process.execute(note(case_id, "from an API process"), from_api())
        finally:
            api_process.close()

    assert origins(casebook)[(str(case_id), 2)] == FROM_API
