"""API processes sending commands to one writer process over its Unix socket."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import psycopg
import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.errors import CaseNotFound, VersionConflict, WriteUnavailable
from casebook.settings import Settings
from casebook.writer_process import WriterService, writer_service
from domain.cases.state import NoteVisibility
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.write_side import as_agent, open_request, register_organisation

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]


@pytest.fixture
def writer(clean_database: Database) -> Iterator[WriterService]:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    try:
        with writer_service(casebook) as service:
            yield service
    finally:
        casebook.close()


@pytest.fixture
def api_process(clean_database: Database, writer: WriterService) -> Iterator[Casebook]:
    """A Casebook as an API process has it: commands go to the writer process."""
    settings = Settings(database_url=clean_database.url)
    casebook = Casebook.connect(clean_database, settings, writer_address=writer.address)
    yield casebook
    casebook.close()


def note(case_id: object, text: str) -> c.AddNote:
    return c.AddNote(case_id, text, NoteVisibility.INTERNAL)  # type: ignore[arg-type]


def test_a_command_sent_to_the_writer_process_is_stored_and_readable_here(
    api_process: Casebook,
) -> None:
    case_id = open_request(api_process, register_organisation(api_process))

    result = api_process.execute(note(case_id, "from an API process"), as_agent(expected=1))

    assert result.version == 2
    assert api_process.get_case(case_id).version == 2


def test_refusals_reach_the_api_process_with_their_details(api_process: Casebook) -> None:
    case_id = open_request(api_process, register_organisation(api_process))
    missing = uuid4()

    with pytest.raises(VersionConflict) as conflict:
        api_process.execute(note(case_id, "stale"), as_agent(expected=5))
    with pytest.raises(CaseNotFound) as not_found:
        api_process.execute(note(missing, "lost"), as_agent())

    assert (conflict.value.current_version, conflict.value.expected_version) == (1, 5)
    assert conflict.value.rule == "expected-version-matches"
    assert not_found.value.case_id == missing


def test_several_api_processes_share_one_history_per_case(
    clean_database: Database, writer: WriterService
) -> None:
    settings = Settings(database_url=clean_database.url)
    processes = [
        Casebook.connect(clean_database, settings, writer_address=writer.address) for _ in range(3)
    ]
    try:
        organisation_id = register_organisation(processes[0])
        cases = [open_request(processes[0], organisation_id) for _ in range(2)]

        def send(i: int) -> int:
            process = processes[i % 3]
            return process.execute(note(cases[i % 2], f"n{i}"), as_agent()).version

        with ThreadPoolExecutor(max_workers=12) as pool:
            versions = list(pool.map(send, range(60)))
    finally:
        for process in processes:
            process.close()

    assert sorted(versions) == sorted([*range(2, 32), *range(2, 32)])
    with psycopg.connect(clean_database.url) as conn:
        for case_id in cases:
            stored = [
                row[0]
                for row in conn.execute(
                    "SELECT originator_version FROM casebook_events"
                    " WHERE originator_id = %s ORDER BY notification_id",
                    (case_id,),
                )
            ]
            assert stored == list(range(1, 32))


def test_commands_fail_as_unavailable_once_the_writer_process_is_gone(
    api_process: Casebook, writer: WriterService
) -> None:
    case_id = open_request(api_process, register_organisation(api_process))

    writer.close()

    with pytest.raises(WriteUnavailable):
        api_process.execute(note(case_id, "too late"), as_agent())
