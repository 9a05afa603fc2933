"""A verification opens one case, even when two openings with it race (write side)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import pytest

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.organisations.errors import VerificationAlreadyUsed
from domain.values import ContactKind
from tests.integration.conftest import ON_BOTH_SERVERS
from tests.integration.write_side import AGENT_ON_PHONE, EMAIL, PHONE, register_organisation

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

CALLER = "+44 20 7946 0000"
CODE = "482913"
ON_THE_PHONE = c.CommandContext(AGENT_ON_PHONE)


@pytest.fixture
def casebooks(clean_database: Database) -> Iterator[tuple[Casebook, Casebook]]:
    """Two write sides on one database, as two processes would run them."""
    settings = Settings(database_url=clean_database.url)
    first = Casebook.connect(clean_database, settings)
    second = Casebook.connect(clean_database, settings)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def verified_caller(casebook: Casebook, organisation_id: UUID) -> UUID:
    verification_id = uuid4()
    casebook.execute(
        c.RequestCallerVerification(organisation_id, verification_id, CALLER, CODE), ON_THE_PHONE
    )
    casebook.execute(
        c.ConfirmCallerVerification(organisation_id, verification_id, CODE), ON_THE_PHONE
    )
    return verification_id


def opening(organisation_id: UUID, verification_id: UUID) -> c.OpenRequest:
    return c.OpenRequest(
        organisation_id=organisation_id,
        requester_id="ada",
        category="technical",  # type: ignore[arg-type]
        title="Mail is down",
        description="",
        contact_phone=PHONE,
        contact_email=EMAIL,
        preferred_contact=ContactKind.EMAIL,
        caller_phone=CALLER,
        verification_id=verification_id,
    )


def outcomes(results: list[object]) -> list[str]:
    return sorted(type(result).__name__ for result in results)


def test_two_openings_in_one_batch_open_one_case(
    casebooks: tuple[Casebook, Casebook],
) -> None:
    casebook, _ = casebooks
    organisation_id = register_organisation(casebook)
    verification_id = verified_caller(casebook, organisation_id)
    command = opening(organisation_id, verification_id)
    futures = casebook.execute_together([(command, ON_THE_PHONE), (command, ON_THE_PHONE)])
    results = [future.exception() or future.result() for future in futures]
    assert outcomes(results) == ["CommandResult", "VerificationAlreadyUsed"]


def test_two_write_sides_racing_open_one_case(casebooks: tuple[Casebook, Casebook]) -> None:
    first, second = casebooks
    for _ in range(5):
        # A new organisation each round: `second` has not cached it, so it reads it
        # with the verified caller (a write side's cache follows another's writes only
        # once it has seen them conflict, docs/write-side.md#several-processes).
        organisation_id = register_organisation(first)
        verification_id = verified_caller(first, organisation_id)
        start = threading.Barrier(2)

        def open_with(
            casebook: Casebook,
            verification_id: UUID = verification_id,
            organisation_id: UUID = organisation_id,
            start: threading.Barrier = start,
        ) -> object:
            start.wait()
            try:
                return casebook.execute(opening(organisation_id, verification_id), ON_THE_PHONE)
            except VerificationAlreadyUsed as refused:
                return refused

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(open_with, (first, second)))
        assert outcomes(results) == ["CommandResult", "VerificationAlreadyUsed"]
        used = first.get_organisation(organisation_id).verifications[verification_id].used_by
        [opened] = [r for r in results if isinstance(r, c.CommandResult)]
        assert used == opened.aggregate_id
