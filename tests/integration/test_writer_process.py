"""API processes sending commands to one writer process over its Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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
from domain.incidents.errors import IncidentShownFirst
from domain.values import Actor, Category, Channel, Role
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.write_side import (
    as_agent,
    close_open_incidents,
    open_request,
    register_organisation,
)

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


def test_the_incidents_shown_first_reach_the_api_process(api_process: Casebook) -> None:
    organisation = register_organisation(api_process)
    supervisor = c.CommandContext(Actor("sue", Role.SUPERVISOR, Channel.API))
    declared = c.DeclareIncident(("Exchange Online",), (Category.TECHNICAL,), "Mail is delayed.")
    incident = api_process.execute(declared, supervisor).aggregate_id

    try:
        with pytest.raises(IncidentShownFirst) as shown:
            open_request(api_process, organisation)
    finally:
        close_open_incidents(api_process)

    assert shown.value.rule == "service-incident-shown-first"
    assert [(i["id"], i["summary"]) for i in shown.value.incidents] == [
        (str(incident), "Mail is delayed.")
    ]


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


# --- from an event loop (what the API routes use) ----------------------------------


def test_commands_run_from_an_event_loop_are_stored_in_order(api_process: Casebook) -> None:
    case_id = open_request(api_process, register_organisation(api_process))

    async def send_many() -> list[int]:
        results = await asyncio.gather(
            *(api_process.run(note(case_id, f"n{i}"), as_agent()) for i in range(20))
        )
        return [result.version for result in results]

    versions = asyncio.run(send_many())

    assert sorted(versions) == list(range(2, 22))
    assert api_process.get_case(case_id).version == 21


def test_refusals_reach_an_event_loop_with_their_details(api_process: Casebook) -> None:
    case_id = open_request(api_process, register_organisation(api_process))

    async def stale() -> None:
        await api_process.run(note(case_id, "stale"), as_agent(expected=5))

    with pytest.raises(VersionConflict) as conflict:
        asyncio.run(stale())

    assert (conflict.value.current_version, conflict.value.expected_version) == (1, 5)


def test_a_cancelled_request_leaves_the_loops_link_working(api_process: Casebook) -> None:
    case_id = open_request(api_process, register_organisation(api_process))

    async def cancel_one_then_send() -> int:
        await api_process.run(note(case_id, "first"), as_agent())  # the loop is linked
        abandoned = asyncio.ensure_future(api_process.run(note(case_id, "gone"), as_agent()))
        await asyncio.sleep(0)  # sent, not answered yet
        abandoned.cancel()
        return (await api_process.run(note(case_id, "after"), as_agent())).version

    version = asyncio.run(cancel_one_then_send())

    # The abandoned note was sent before its caller went away: it is stored all the same.
    assert version == 4
    assert [n.text for n in api_process.get_case(case_id).notes] == ["first", "gone", "after"]


def test_a_request_cancelled_while_its_loop_connects_does_not_fail_the_others(
    api_process: Casebook,
) -> None:
    case_id = open_request(api_process, register_organisation(api_process))

    async def cancel_one_while_connecting() -> tuple[int, int]:
        cancelled = asyncio.ensure_future(api_process.run(note(case_id, "never"), as_agent()))
        waiting = asyncio.ensure_future(api_process.run(note(case_id, "sent"), as_agent()))
        await asyncio.sleep(0)  # both wait for the loop's connection to the writer
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        later = await api_process.run(note(case_id, "later"), as_agent())
        return (await waiting).version, later.version

    assert asyncio.run(cancel_one_while_connecting()) == (2, 3)
    assert [n.text for n in api_process.get_case(case_id).notes] == ["sent", "later"]


def test_an_event_loop_gets_unavailable_once_the_writer_process_is_gone(
    api_process: Casebook, writer: WriterService
) -> None:
    case_id = open_request(api_process, register_organisation(api_process))

    async def before_and_after_close() -> None:
        await api_process.run(note(case_id, "linked"), as_agent())
        writer.close()
        await asyncio.sleep(0.2)  # the loop reads the end of the connection
        await api_process.run(note(case_id, "too late"), as_agent())

    with pytest.raises(WriteUnavailable):
        asyncio.run(before_and_after_close())


def test_an_unreachable_writer_is_unavailable_and_tried_again_next_time(
    clean_database: Database, tmp_path: Path
) -> None:
    casebook = Casebook.connect(clean_database, Settings(database_url=clean_database.url))
    address = str(tmp_path / "writer.sock")
    try:
        service = WriterService(casebook, address)
        api = Casebook.connect(
            clean_database, Settings(database_url=clean_database.url), writer_address=address
        )
        service.close()  # listening socket gone before the loop's first command
        Path(address).unlink(missing_ok=True)

        async def first() -> None:
            await api.run(note(uuid4(), "nobody listens"), as_agent())

        with pytest.raises(WriteUnavailable, match="unreachable"):
            asyncio.run(first())
        api.close()
    finally:
        casebook.close()
