"""The notifier part: delivers the messages the write side kept (survey invitations).

`casebook run` runs it beside the API; `casebook notifications deliver` runs it alone,
for a deployment that serves the API with `casebook serve`.
"""

from __future__ import annotations

import threading

import psycopg

from casebook.database import Database
from casebook.settings import Settings
from entrypoints.background import backoff, run_parts
from messaging.delivery import NotificationDelivery
from messaging.notifications import notifier_from


class NotifierService:
    """One part, "notifier", handing kept messages to the configured notifier."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.settings = settings
        notifier = notifier_from(settings, lambda: psycopg.connect(db.url))
        self.delivery = NotificationDelivery(
            db.url, notifier, retry_max_s=settings.part_retry_max_seconds
        )
        self.parts = {"notifier": self.delivery.run}

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set, then stop the part and wait for it."""
        run_parts("notifier", self.parts, stop, backoff(self.settings))
