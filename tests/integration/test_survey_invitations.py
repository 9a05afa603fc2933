"""Resolving invites the customer to the satisfaction survey (§6): the event, the message
kept with it, and the notifier part that delivers it through the notifier port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from casebook.database import Database
from casebook.supervision import BOARD, Backoff, supervised
from domain.values import Role
from messaging.delivery import NotificationDelivery, outbox_messages
from messaging.notifications import (
    Notification,
    NotificationNotSent,
    SmtpNotifier,
    TableNotifier,
)
from tests.integration.api_support import (
    REGISTERED_EMAIL,
    REGISTERED_PHONE,
    Api,
    open_case,
    register_acme,
    running_api,
)
from tests.integration.conftest import CliRunner
from tests.integration.smtp_support import Inbox, smtp_server

pytestmark = pytest.mark.integration
__all__ = ["smtp_server"]  # the fixture, used by name


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as client:
        yield client


def command(client: TestClient, api: Api, path: str, body: dict[str, Any]) -> Any:
    response = client.post(path, json=body, headers=api.as_(Role.AGENT))
    assert response.status_code == 200, response.text
    return response.json()


def resolved_case(
    client: TestClient, api: Api, organisation: str | None = None, **opening: Any
) -> tuple[str, list[str]]:
    """A case assessed, answered and resolved; its id and the resolution's event types."""
    organisation = organisation or register_acme(client, api)
    case_id = open_case(client, api, organisation, **opening)
    command(client, api, f"/cases/{case_id}/severity", {"severity": "C"})
    command(client, api, f"/cases/{case_id}/responses", {"message_summary": "On it"})
    resolution = {"reason": "fixed", "resolution": "Internal: rebooted mx-3 (ticket 42)"}
    resolved = command(client, api, f"/cases/{case_id}/resolution", resolution)
    return case_id, list(resolved["events"])


def kept(database: Database) -> list[Any]:
    with psycopg.connect(database.url) as conn:
        return outbox_messages(conn)


def table_notifier(database: Database) -> TableNotifier:
    return TableNotifier(lambda: psycopg.connect(database.url))


def test_resolving_records_the_invitation_and_keeps_its_message_with_it(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    case_id, events = resolved_case(client, api, preferred_contact="email")

    assert events == ["casebook.case.resolved.v2", "casebook.case.survey_invited.v1"]
    [message] = kept(clean_database)
    assert (str(message.case_id), message.state) == (case_id, "pending")
    assert (message.kind, message.recipient) == ("email", REGISTERED_EMAIL)
    assert case_id in message.subject and case_id in message.message
    assert "portal" in message.message and "Mail is not delivered" in message.message
    assert "rebooted" not in message.message  # the resolution text stays inside
    history = client.get(f"/cases/{case_id}/events", headers=api.as_(Role.AUDITOR)).json()
    invited = [e for e in history["events"] if e["type"].endswith("survey_invited.v1")]
    assert [e["data"]["to"] for e in invited] == ["email"]
    customer = client.get(f"/cases/{case_id}/timeline", headers=api.as_(Role.PORTAL))
    assert "survey_invited" in [e["what"] for e in customer.json()["events"]]


def test_a_phone_preferring_customer_is_invited_at_the_phone(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    resolved_case(client, api, preferred_contact="phone")
    [message] = kept(clean_database)
    assert (message.kind, message.recipient) == ("phone", REGISTERED_PHONE)


def test_the_notifier_part_delivers_the_invitation_and_the_customer_answers_once(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    case_id, _ = resolved_case(client, api)
    delivery = NotificationDelivery(clean_database.url, table_notifier(clean_database))

    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        assert delivery.deliver_due(conn) == 1
        assert delivery.deliver_due(conn) == 0  # delivered once, not again
        sent = conn.execute("SELECT recipient, subject FROM casebook_notifications").fetchall()
    assert [(r, case_id in s) for r, s in sent] == [(REGISTERED_EMAIL, True)]
    [message] = kept(clean_database)
    assert (message.state, message.attempts) == ("delivered", 1)

    portal = api.as_(Role.PORTAL)
    first = client.post(f"/cases/{case_id}/satisfaction", json={"score": 5}, headers=portal)
    again = client.post(f"/cases/{case_id}/satisfaction", json={"score": 1}, headers=portal)
    assert first.status_code == 200, first.text
    assert again.status_code == 409 and again.json()["rule"] == "satisfaction-recorded-once"

    # Reopened and resolved again after the answer: no second invitation.
    reopen = {"reason": "Mail bounces again"}
    command(client, api, f"/cases/{case_id}/reopen", reopen)
    resolution = {"reason": "fixed", "resolution": "Fixed for good"}
    again_resolved = command(client, api, f"/cases/{case_id}/resolution", resolution)
    assert again_resolved["events"] == ["casebook.case.resolved.v2"]
    assert len(kept(clean_database)) == 1


def test_the_notifier_part_delivers_the_invitation_by_smtp(
    api: Api, client: TestClient, clean_database: Database, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    case_id, _ = resolved_case(client, api, preferred_contact="email")
    notifier = SmtpNotifier("127.0.0.1", port, "support@casebook.example")

    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        assert NotificationDelivery(clean_database.url, notifier).deliver_due(conn) == 1

    [(sender, recipients, mail)] = inbox.messages
    assert (sender, recipients) == ("support@casebook.example", [REGISTERED_EMAIL])
    body = mail.get_payload(decode=True).decode()
    assert case_id in str(mail["Subject"]) and case_id in body
    assert kept(clean_database)[0].state == "delivered"


class FlakyNotifier:
    """A notifier whose channel refuses the first `failures` messages, then delivers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[Notification] = []

    def send(self, notification: Notification) -> None:
        if self.failures:
            self.failures -= 1
            raise NotificationNotSent("The mail server 127.0.0.1:25 did not take the message.")
        self.delivered.append(notification)


def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_refused_message_is_retried_shown_as_trouble_and_never_lost(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    case_id, _ = resolved_case(client, api)
    notifier = FlakyNotifier(failures=3)
    delivery = NotificationDelivery(clean_database.url, notifier, retry_max_s=0.2, idle_s=0.05)
    name = f"notifier-{uuid4()}"
    troubles: list[str] = []
    stop = threading.Event()
    part = threading.Thread(target=supervised(name, delivery.run, Backoff(0.1, 0.2)), args=(stop,))
    with capture_logs() as logs:
        part.start()
        run_until_delivered(name, troubles, clean_database, stop, part)
    assert "did not take the message" in troubles[0]
    failures = [entry for entry in logs if entry["event"] == "notification.failed"]
    assert [entry["attempt"] for entry in failures] == [1, 2, 3]  # each failure logged once
    assert REGISTERED_EMAIL not in str(logs) and "portal" not in str(logs)  # nor the message
    [delivered] = notifier.delivered
    assert case_id in delivered.message
    [message] = kept(clean_database)
    assert (message.state, message.attempts) == ("delivered", 4)


def run_until_delivered(
    name: str,
    troubles: list[str],
    clean_database: Database,
    stop: threading.Event,
    part: threading.Thread,
) -> None:
    """Watch the part fail twice (noting its trouble), then deliver and be healthy again."""
    try:

        def failed_twice() -> bool:
            status = {s.name: s for s in BOARD.snapshot()}.get(name)
            if status is not None and status.failures >= 2:
                troubles.append(BOARD.troubles(0.0).get(name, ""))
                return True
            return False

        wait_until(failed_twice)
        [waiting] = kept(clean_database)
        assert waiting.state == "failed" and waiting.attempts >= 2
        assert "did not take the message" in (waiting.last_error or "")
        wait_until(lambda: kept(clean_database)[0].state == "delivered")
        wait_until(lambda: name not in BOARD.troubles(0.0))
    finally:
        stop.set()
        part.join(5)
        BOARD.forget(name)


def test_notifications_list_tells_delivered_pending_and_failed_apart(
    api: Api, client: TestClient, clean_database: Database, cli: CliRunner
) -> None:
    acme = register_acme(client, api)
    delivered_case, _ = resolved_case(client, api, acme)
    failed_case, _ = resolved_case(client, api, acme)
    pending_case, _ = resolved_case(client, api, acme)
    with psycopg.connect(clean_database.url, autocommit=True) as conn:
        NotificationDelivery(clean_database.url, table_notifier(clean_database)).deliver_due(
            conn, limit=1
        )
        NotificationDelivery(clean_database.url, FlakyNotifier(failures=1)).deliver_due(
            conn, limit=1
        )

    result = cli("notifications", "list", db=clean_database)

    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()

    def line_of(case_id: str) -> str:
        [found] = [line for line in lines if f"  case {case_id}  " in line]
        return found

    assert "  delivered  " in line_of(delivered_case)
    assert "  failed  " in line_of(failed_case) and "did not take" in line_of(failed_case)
    assert "  pending  " in line_of(pending_case)
    assert "kept by the embedded notifier:" in lines


def test_notifications_deliver_runs_the_notifier_part_alone_until_sigterm(
    api: Api, client: TestClient, clean_database: Database
) -> None:
    resolved_case(client, api)
    env = {**os.environ, "CASEBOOK_DATABASE_URL": clean_database.url}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "casebook"), "notifications", "deliver"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: kept(clean_database)[0].state == "delivered", seconds=60)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    with psycopg.connect(clean_database.url) as conn:
        [[kept_by_table]] = conn.execute("SELECT count(*) FROM casebook_notifications").fetchall()
    assert kept_by_table == 1
