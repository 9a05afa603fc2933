"""The notifier part: delivers the messages the write side kept, through the notifier port.

Rows of `casebook_notification_outbox` (written with the events that decided them,
`casebook.pending_notifications`) are taken one at a time, oldest due first, locked
with SKIP LOCKED so that two casebook processes never hand the same row out together.
A row the notifier takes is marked delivered; one it refuses (`NotificationNotSent`, a
mail server down) keeps its place, counts the attempt, says why (never the message) and
is tried again after a delay that doubles up to the cap. A failure is logged once per
attempt and reported on the board: the part shows as failing (/status, /healthz,
metrics) until every message that failed has been delivered. Nothing is dropped.

Delivery is at least once: a message handed over just before its row's update is lost
(the database gone at that moment) is handed over again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import psycopg
import structlog
from psycopg.rows import class_row, tuple_row

from casebook.supervision import report_lag, report_trouble
from messaging.notifications import Notification, NotificationNotSent, Notifier

log = structlog.get_logger("messaging.delivery")
FIRST_RETRY_S = 1.0
State = Literal["delivered", "pending", "failed"]
_COLUMNS = (
    "id, created_at, case_id, organisation_id, kind, recipient, subject, attempts,"
    " next_attempt_at, last_error, delivered_at, message"
)


@dataclass(frozen=True)
class OutboxMessage:
    """A kept message and how its delivery went."""

    id: int
    created_at: datetime
    case_id: UUID
    organisation_id: UUID
    kind: str
    recipient: str
    subject: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    message: str = field(repr=False)

    @property
    def state(self) -> State:
        """Delivered; pending (not tried yet); failed (tried, to be tried again)."""
        if self.delivered_at is not None:
            return "delivered"
        return "failed" if self.attempts else "pending"


def retry_delay(attempts: int, max_s: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling, capped."""
    return float(min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), max_s))


class NotificationDelivery:
    """Delivers due messages until told to stop (a supervised part: `run`)."""

    def __init__(
        self, url: str, notifier: Notifier, *, retry_max_s: float = 30.0, idle_s: float = 1.0
    ) -> None:
        self._url, self._notifier = url, notifier
        self._retry_max_s, self._idle_s = retry_max_s, idle_s

    def run(self, stop: threading.Event) -> None:
        """Deliver what is due, then wait a moment; a database error ends the run (and
        the supervisor starts it again)."""
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not stop.is_set():
                handed = self.deliver_due(conn)
                waiting, failing = undelivered(conn)
                if not failing:
                    # Nothing failed that is still waiting: the part is healthy.
                    report_lag(waiting, progressed=handed > 0)
                if not handed:
                    stop.wait(self._idle_s)

    def deliver_due(self, conn: psycopg.Connection[Any], limit: int = 100) -> int:
        """Try each due message once, up to `limit`; how many were tried."""
        tried = 0
        while tried < limit:
            with conn.transaction():
                row = claim_due(conn)
                if row is None:
                    return tried
                tried += 1
                self._deliver(conn, row)
        return tried

    def _deliver(self, conn: psycopg.Connection[Any], row: OutboxMessage) -> None:
        notification = Notification(
            row.organisation_id,
            "email" if row.kind == "email" else "phone",
            row.recipient,
            row.subject,
            row.message,
        )
        try:
            self._notifier.send(notification)
        except NotificationNotSent as error:
            delay = retry_delay(row.attempts + 1, self._retry_max_s)
            mark_failed(conn, row.id, str(error), delay)
            log.warning(
                "notification.failed",
                message_id=row.id,
                case_id=str(row.case_id),
                attempt=row.attempts + 1,
                error=str(error),
                retry_in_s=delay,
            )
            report_trouble(error)
            return
        mark_delivered(conn, row.id)
        log.info("notification.delivered", message_id=row.id, case_id=str(row.case_id))


def claim_due(conn: psycopg.Connection[Any]) -> OutboxMessage | None:
    """The oldest undelivered message whose attempt is due, locked until the
    transaction ends (another notifier part skips it), or None."""
    with conn.cursor(row_factory=class_row(OutboxMessage)) as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM casebook_notification_outbox"
            " WHERE delivered_at IS NULL AND next_attempt_at <= now()"
            " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        return cursor.fetchone()


def mark_delivered(conn: psycopg.Connection[Any], message_id: int) -> None:
    conn.execute(
        "UPDATE casebook_notification_outbox SET delivered_at = now(),"
        " attempts = attempts + 1 WHERE id = %s",
        (message_id,),
    )


def mark_failed(conn: psycopg.Connection[Any], message_id: int, error: str, delay: float) -> None:
    """Count a failed attempt, why (never the message), and when to try again."""
    conn.execute(
        "UPDATE casebook_notification_outbox SET attempts = attempts + 1, last_error = %s,"
        " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
        (error, delay, message_id),
    )


def undelivered(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """How many messages wait, and how many of those failed at least once."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE attempts > 0)"
            " FROM casebook_notification_outbox WHERE delivered_at IS NULL"
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def outbox_messages(
    conn: psycopg.Connection[Any], *, organisation_id: UUID | None = None, limit: int = 20
) -> list[OutboxMessage]:
    """The newest kept messages first, delivered or not, of one organisation or of all."""
    with conn.cursor(row_factory=class_row(OutboxMessage)) as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM casebook_notification_outbox"
            " WHERE %(org)s::uuid IS NULL OR organisation_id = %(org)s::uuid"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"org": organisation_id, "limit": limit},
        )
        return cursor.fetchall()
