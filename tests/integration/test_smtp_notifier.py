"""The SMTP notifier against a real SMTP server (aiosmtpd) the test starts on loopback."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from casebook.database import Database
from casebook.settings import Settings
from domain.values import Role
from messaging.notifications import Notification, NotificationNotSent, SmtpNotifier
from tests.integration.api_support import REGISTERED_EMAIL, register_acme, running_api
from tests.integration.smtp_support import Inbox, free_port, smtp_server
from tests.integration.verification_support import confirm, open_for_caller, request_code

pytestmark = pytest.mark.integration
__all__ = ["smtp_server"]  # the fixture, used by name


def test_the_smtp_notifier_delivers_an_email(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    notifier = SmtpNotifier("127.0.0.1", port, "support@casebook.example")
    notifier.send(Notification(uuid4(), "email", REGISTERED_EMAIL, "Your code", "Code: 123456"))
    [(sender, recipients, message)] = inbox.messages
    assert (sender, recipients) == ("support@casebook.example", [REGISTERED_EMAIL])
    assert message["Subject"] == "Your code"
    assert message.get_payload(decode=True).decode().strip() == "Code: 123456"  # type: ignore[union-attr]


def test_the_smtp_notifier_says_why_it_could_not_send() -> None:
    notifier = SmtpNotifier("127.0.0.1", free_port(), "support@casebook.example")
    with pytest.raises(NotificationNotSent, match="did not take the message") as refused:
        notifier.send(Notification(uuid4(), "email", REGISTERED_EMAIL, "Your code", "123456"))
    assert refused.value.rule == "notification-delivered"
    assert "123456" not in str(refused.value)
    with pytest.raises(NotificationNotSent, match="e-mail only"):
        notifier.send(Notification(uuid4(), "phone", "+48221234567", "Your code", "123456"))


def test_a_caller_verified_by_a_code_sent_by_email_gets_their_case_opened(
    database: Database, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    settings = Settings(database_url=database.url, notifier="smtp", smtp_port=port)
    with running_api(database, settings=settings) as api, TestClient(api.app) as client:
        organisation_id = register_acme(client, api)
        sent = request_code(client, api, organisation_id)
        assert sent.status_code == 201, sent.text
        [(_, recipients, message)] = inbox.messages
        assert recipients == [REGISTERED_EMAIL]
        text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
        code = next(word.strip(".") for word in text.split() if word.strip(".").isdigit())
        verification_id = sent.json()["verification_id"]
        assert confirm(client, api, organisation_id, verification_id, code).status_code == 200
        assert open_for_caller(client, api, organisation_id, verification_id).status_code == 201


def test_a_code_that_cannot_be_sent_is_not_recorded(database: Database) -> None:
    settings = Settings(database_url=database.url, notifier="smtp", smtp_port=free_port())
    with running_api(database, settings=settings) as api, TestClient(api.app) as client:
        organisation_id = register_acme(client, api)
        before = api.casebook.get_organisation(UUID(organisation_id)).version
        response = request_code(client, api, organisation_id)
        assert response.status_code == 503, response.text
        assert response.json()["rule"] == "notification-delivered"
        assert response.headers["Retry-After"] == "5"
        organisation = api.casebook.get_organisation(UUID(organisation_id))
        assert (organisation.version, organisation.verifications) == (before, {})
        by_phone = request_code(client, api, organisation_id, send_to="+48 22 123 45 67")
        assert by_phone.status_code == 503 and "e-mail only" in by_phone.json()["detail"]
        assert (
            client.get(f"/organisations/{organisation_id}", headers=api.as_(Role.AGENT)).status_code
            == 200
        )
