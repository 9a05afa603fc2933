"""Erasure and export of personal data (GDPR art. 17 and 15), over the write side.

An erasure (1) destroys the data keys of its scope in one transaction with its record
in `casebook_erasures` and the scrubbing of the messages kept for sending, so from its
commit nothing sealed under those keys can be read again; then (2) records
`PersonalDataErased` on the organisation and on every case it reached, through the
writer like any command, so each history says who erased what, when and why, and
every process's cached aggregates forget the same fields. Step 2 is counted in the
erasure's row: an erasure stopped half-way says so, and running it again completes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from casebook import commands as c
from domain.erasure import erasure_reason
from domain.errors import NotFound
from domain.values import ERASED, Actor
from privacy.erasures import cases_in_scope, count_erasure, record_erasure, scrub_copies
from privacy.fields import personal_fields
from privacy.keyring import destroy_keys
from privacy.plaintext import redact_plaintext

if TYPE_CHECKING:
    from casebook.application import Casebook

CHUNK = 64  # one writer batch at the default: an outage stops it after one batch's retries
Progress = Callable[[int, int], None]  # (recorded, of)


class NothingToErase(NotFound):
    """The subject named has no case and no data key: nothing of theirs is kept."""

    rule = "erasure-names-a-known-subject"


class ErasureCutShort(RuntimeError):
    """Step 2 stopped (Ctrl-C, an outage): the keys are gone, some events not recorded."""

    def __init__(self, erasure_id: int, recorded: int, of: int) -> None:
        super().__init__(
            f"erasure {erasure_id} cut short: its data keys are destroyed and {recorded} of "
            f"{of} erasure events recorded; run the same erasure again to complete it"
        )


@dataclass(frozen=True)
class Erasure:
    """Whose personal data to erase: an organisation's, a subject's, or both (within it)."""

    organisation_id: UUID | None
    subject: str | None
    reason: str


@dataclass(frozen=True)
class ErasureReport:
    erasure_id: int
    keys_destroyed: int
    cases: int
    recorded: int


def erase(
    casebook: Casebook, erasure: Erasure, actor: Actor, progress: Progress | None = None
) -> ErasureReport:
    """Destroy the scope's keys, then record the erasure on everything it reached."""
    reason = erasure_reason(erasure.reason)
    org, subject = erasure.organisation_id, erasure.subject
    if org is not None:
        casebook.get_organisation(org)  # OrganisationNotFound
    with _connection(casebook) as conn:
        cases = cases_in_scope(conn, org, subject)
    whole = org is not None and subject is None
    recipients = [] if whole else _contacts_of(casebook, cases)
    with _connection(casebook) as conn, conn.transaction():
        by = (actor.principal_id, str(actor.role))
        erasure_id = record_erasure(conn, org, subject, by, reason, len(cases))
        destroyed = destroy_keys(conn, erasure_id, org, subject)
        if not cases and not destroyed and not whole:
            raise NothingToErase(f"No case or data key belongs to subject {subject!r}.")
        scrub_copies(conn, cases, org, whole, recipients)
        streams = [*cases, *([org] if org is not None and whole else [])]
        redact_plaintext(conn, casebook.store.mapper.transcoder, streams)
        count_erasure(conn, erasure_id, keys=destroyed)
    with _connection(casebook) as conn:  # autocommit: the destroyed keys' old row versions go
        conn.execute("VACUUM casebook_data_keys")
    if casebook.store.mapper.keyring is not None:
        casebook.store.mapper.keyring.forget()
    commands = _erasure_commands(erasure, reason, cases)
    context, recorded = c.CommandContext(actor=actor), 0
    try:
        for chunk in _chunks(commands):
            for future in casebook.execute_together([(command, context) for command in chunk]):
                future.result()  # a refusal or an outage stops the erasure loudly
                recorded += 1
            if progress is not None:
                progress(recorded, len(commands))
    except BaseException as error:  # Ctrl-C too: the row must say how far it got
        with suppress(Exception), _connection(casebook) as conn, conn.transaction():
            count_erasure(conn, erasure_id, recorded=recorded, completed=False)
        raise ErasureCutShort(erasure_id, recorded, len(commands)) from error
    with _connection(casebook) as conn, conn.transaction():
        count_erasure(conn, erasure_id, recorded=recorded)
    return ErasureReport(erasure_id, destroyed, len(cases), recorded)


def export(casebook: Casebook, subject: str) -> dict[str, Any]:
    """Every personal field kept of the subject's cases, event by event (access request)."""
    with _connection(casebook) as conn:
        cases = cases_in_scope(conn, None, subject)
    if not cases:
        raise NothingToErase(f"No case belongs to subject {subject!r}.")
    exported: list[dict[str, Any]] = []
    for case_id in cases:
        stored = list(casebook.store.events.get(case_id))  # read once: opened first
        events = []
        for event in stored:
            state = vars(event)
            kept = {n: state[n] for n in personal_fields(type(event)) if state.get(n) is not None}
            if kept:
                at = state["at"].isoformat()
                events.append({"version": event.originator_version, "at": at, "fields": kept})
        organisation_id = str(vars(stored[0])["organisation_id"])
        exported.append({"case_id": str(case_id), "organisation_id": organisation_id})
        exported[-1]["events"] = events
    return {"subject": subject, "cases": exported}


def _erasure_commands(erasure: Erasure, reason: str, cases: list[UUID]) -> list[c.Command]:
    commands: list[c.Command] = [
        c.EraseCaseData(case_id, erasure.subject, reason) for case_id in cases
    ]
    if erasure.organisation_id is not None and erasure.subject is None:
        commands.insert(0, c.EraseOrganisationData(erasure.organisation_id, reason))
    return commands


def _contacts_of(casebook: Casebook, cases: list[UUID]) -> list[str]:
    """The subject's phone numbers and addresses, read before their keys are destroyed."""
    found: set[str] = set()
    for case_id in cases:
        case = casebook.get_case(case_id)
        found |= {case.contact_phone, case.contact_email, case.caller_phone or ""}
    return sorted(found - {"", ERASED})


def _chunks(items: list[c.Command]) -> Iterator[list[c.Command]]:
    return (items[start : start + CHUNK] for start in range(0, len(items), CHUNK))


def _connection(casebook: Casebook) -> Any:
    return casebook.store.recorder.datastore.get_connection()  # type: ignore[attr-defined]
