"""A one-time code never shows in the repr of what carries it (tracebacks print locals)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from casebook import commands as c
from messaging.notifications import Notification, SentNotification

CODE = "482913"


def test_commands_and_messages_carrying_a_code_keep_it_out_of_their_repr() -> None:
    organisation_id, verification_id = uuid4(), uuid4()
    message = f"Your code: {CODE}"
    carriers = [
        c.RequestCallerVerification(organisation_id, verification_id, "+44 20 7946 0000", CODE),
        c.ConfirmCallerVerification(organisation_id, verification_id, CODE),
        Notification(organisation_id, "email", "it@acme.example", "Your code", message),
        SentNotification(
            1, datetime.now(UTC), organisation_id, "email", "it@acme.example", "Code", message
        ),
    ]
    for carrier in carriers:
        assert CODE not in repr(carrier)
        assert str(verification_id) in repr(carrier) or "organisation_id" in repr(carrier)
