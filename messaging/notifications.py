"""Messages to people: the notifier port and its two adapters.

casebook sends two kinds of message: the one-time code of a caller verification (policy
§2), to a phone or e-mail registered in the organisation's profile, sent from the API
before the request is recorded; and the satisfaction survey invitation of a resolution
(§6), kept by the write side with its event and delivered by the notifier part
(`messaging.delivery`). Where they go is a deployment's choice (`CASEBOOK_NOTIFIER`):
the embedded default keeps each message in `casebook_notifications` for `casebook
notifications list` (a support desk without a mail server, a demo, the tests); `smtp`
sends e-mail through a mail server. A message is what goes out (a code, an address):
nothing here logs it.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal, Protocol
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from casebook.settings import Settings
from domain.errors import DomainError

Kind = Literal["email", "phone"]
Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
SMTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Notification:
    """One message to one recipient (an e-mail address or a phone number)."""

    organisation_id: UUID
    kind: Kind
    recipient: str
    subject: str
    message: str = field(repr=False)  # holds the code: never in a traceback's locals


@dataclass(frozen=True)
class SentNotification:
    """A notification as the embedded notifier kept it."""

    id: int
    created_at: datetime
    organisation_id: UUID
    kind: str
    recipient: str
    subject: str
    message: str = field(repr=False)


class NotificationNotSent(DomainError):
    """The message could not be handed to its channel; nothing was sent."""

    rule = "notification-delivered"


class Notifier(Protocol):
    """Hands a message to whatever delivers it; raises `NotificationNotSent` if it cannot."""

    def send(self, notification: Notification) -> None: ...


class TableNotifier:
    """Keeps each message in `casebook_notifications` (the embedded default)."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    def send(self, notification: Notification) -> None:
        """Store the message; a database that refuses means it was not sent."""
        try:
            with self._connect() as conn:
                conn.execute(
                    "INSERT INTO casebook_notifications"
                    " (organisation_id, kind, recipient, subject, message)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        notification.organisation_id,
                        notification.kind,
                        notification.recipient,
                        notification.subject,
                        notification.message,
                    ),
                )
        except psycopg.Error as error:
            raise NotificationNotSent(
                f"The notifications table refused the message ({type(error).__name__})."
            ) from None


def sent_notifications(
    conn: psycopg.Connection[Any], *, organisation_id: UUID | None = None, limit: int = 20
) -> list[SentNotification]:
    """The newest kept messages first, of one organisation or of all."""
    with conn.cursor(row_factory=class_row(SentNotification)) as cursor:
        cursor.execute(
            "SELECT id, created_at, organisation_id, kind, recipient, subject, message"
            " FROM casebook_notifications"
            " WHERE %(org)s::uuid IS NULL OR organisation_id = %(org)s::uuid"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"org": organisation_id, "limit": limit},
        )
        return cursor.fetchall()


class SmtpNotifier:
    """Sends each message as an e-mail through an SMTP server (`CASEBOOK_SMTP_*`)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._starttls = starttls
        self._login = (username, password or "") if username else None

    def send(self, notification: Notification) -> None:
        """Deliver to the server, or raise `NotificationNotSent` saying why (never the text)."""
        if notification.kind != "email":
            raise NotificationNotSent(
                "The SMTP notifier sends e-mail only; send the code to a registered e-mail."
            )
        mail = EmailMessage()
        mail["From"], mail["To"] = self._sender, notification.recipient
        mail["Subject"] = notification.subject
        mail.set_content(notification.message)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=SMTP_TIMEOUT_S) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._login is not None:
                    smtp.login(*self._login)
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as error:  # timeouts are OSErrors
            raise NotificationNotSent(
                f"The mail server {self._host}:{self._port} did not take the message "
                f"({type(error).__name__})."
            ) from None


def notifier_from(settings: Settings, connect: Connect) -> Notifier:
    """The notifier `CASEBOOK_NOTIFIER` names."""
    if settings.notifier == "smtp":
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpNotifier(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=password,
        )
    return TableNotifier(connect)
