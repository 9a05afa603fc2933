"""The tables an erasure writes and scrubs, in the caller's transaction (`casebook_*`).

`casebook.personal_data` runs an erasure; these are its statements: the erasure's own
record, the cases its scope reaches, and the copies of personal data outside the event
store that it blanks (messages kept for sending or sent, stored answers of retries).
"""

from __future__ import annotations

from uuid import UUID

import psycopg
from psycopg.rows import DictRow

from domain.values import ERASED

_CASES = (
    "SELECT case_id FROM casebook_case_index WHERE (%(org)s::uuid IS NULL OR organisation_id ="
    " %(org)s) AND (%(subject)s::text IS NULL OR requester_id = %(subject)s) ORDER BY case_id"
)
_RECORD = (
    "INSERT INTO casebook_erasures (organisation_id, subject, erased_by, role, reason,"
    " keys_destroyed, cases) VALUES (%s, %s, %s, %s, %s, 0, %s) RETURNING erasure_id"
)
# Messages kept for sending or sent (caller codes, survey invitations) name people.
_SCRUB_OUTBOX = (
    "UPDATE casebook_notification_outbox SET recipient = %(erased)s, message = %(erased)s,"
    " subject = %(erased)s WHERE case_id = ANY(%(cases)s::uuid[])"
    " OR (%(whole)s AND organisation_id = %(org)s)"
)
_SCRUB_SENT = (
    "UPDATE casebook_notifications SET recipient = %(erased)s, message = %(erased)s,"
    " subject = %(erased)s WHERE (%(whole)s AND organisation_id = %(org)s)"
    " OR recipient = ANY(%(recipients)s::text[])"
)
# The case index lists titles: blank now, not only when step 2 records the erasure.
_SCRUB_INDEX = (
    "UPDATE casebook_case_index SET title = %(erased)s WHERE case_id = ANY(%(cases)s::uuid[])"
)
# A retried command's stored answer names its case; its digest covers the request.
_FORGET_RETRIES = (
    "DELETE FROM casebook_idempotency WHERE (response ->> 'aggregate_id')::uuid"
    " = ANY(%(cases)s::uuid[]) OR (%(whole)s AND (response ->> 'aggregate_id')::uuid = %(org)s)"
)


def cases_in_scope(
    conn: psycopg.Connection[DictRow], organisation_id: UUID | None, subject: str | None
) -> list[UUID]:
    """The cases an erasure (or an export) of this scope reaches, by id."""
    cursor = conn.execute(_CASES, {"org": organisation_id, "subject": subject})
    return [row["case_id"] for row in cursor]


def record_erasure(
    conn: psycopg.Connection[DictRow],
    organisation_id: UUID | None,
    subject: str | None,
    by: tuple[str, str],
    reason: str,
    cases: int,
) -> int:
    """A new row of `casebook_erasures` (who as `(principal, role)`); its id."""
    row = conn.execute(_RECORD, (organisation_id, subject, *by, reason, cases)).fetchone()
    assert row is not None  # INSERT ... RETURNING
    return int(row["erasure_id"])


def scrub_copies(
    conn: psycopg.Connection[DictRow],
    cases: list[UUID],
    organisation_id: UUID | None,
    whole: bool,
    recipients: list[str],
) -> None:
    """Blank the titles listed, messages and stored answers holding the scope's data."""
    scrub = {
        "erased": ERASED,
        "cases": cases,
        "org": organisation_id,
        "whole": whole,
        "recipients": recipients,
    }
    for statement in (_SCRUB_INDEX, _SCRUB_OUTBOX, _SCRUB_SENT, _FORGET_RETRIES):
        conn.execute(statement, scrub)


def count_erasure(
    conn: psycopg.Connection[DictRow],
    erasure_id: int,
    *,
    keys: int | None = None,
    recorded: int = 0,
    completed: bool = True,
) -> None:
    """Note the keys destroyed (step 1), or the events recorded (step 2) and whether all were."""
    if keys is not None:
        conn.execute(
            "UPDATE casebook_erasures SET keys_destroyed = %s WHERE erasure_id = %s",
            (keys, erasure_id),
        )
    else:
        conn.execute(
            "UPDATE casebook_erasures SET recorded = %s,"
            " completed_at = CASE WHEN %s THEN now() END WHERE erasure_id = %s",
            (recorded, completed, erasure_id),
        )
