"""The SLA tracker as a projection of the case-events topic (consumer group "sla")."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from consumers.envelope import Envelope, Poison
from projections.sla import store
from projections.sla.cases import CaseView, Tracker
from projections.sla.targets import Locale, TargetBook, UnknownPolicyVersion

_TYPE = re.compile(r"^casebook\.(case|organisation|incident)\.([a-z_]+)\.v([0-9]+)$")
# The case events this version understands, with the versions it reads. An unknown case
# event could change a clock, so it is poison until the projection learns it;
# organisation events matter only where they carry the customer's locale, and service
# incident events not at all (a case's link to one is a case event). Opened v1,
# Responded v1 and Resolved v1 stay readable: records published earlier are still on
# the topic.
CASE_EVENTS: dict[str, frozenset[str]] = {
    name: frozenset({"1"})
    for name in (
        "severity_assigned",
        "escalated",
        "customer_unresponsive",
        "downgraded",
        "agent_assigned",
        "note_added",
        "reopened",
        "satisfaction_recorded",
        "linked_to_incident",
        "survey_invited",  # no clock or report figure depends on it
        "personal_data_erased",  # neither: only personal fields are forgotten
    )
} | {
    "opened": frozenset({"1", "2", "3", "4", "5"}),
    "responded": frozenset({"1", "2"}),
    "resolved": frozenset({"1", "2"}),
}
LOCALE_EVENTS = frozenset({"registered", "locale_changed"})


class SlaProjection:
    """Clocks per case and metric, the agent queue's order, and the SLA events' outbox."""

    name = "sla"
    topics = ("case-events.v1",)
    contiguous_topics = ("case-events.v1",)

    def __init__(self, targets: TargetBook) -> None:
        self.targets = targets

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[Envelope]) -> None:
        parsed = [(event, *_kind(event)) for event in events]
        case_ids = [e.subject for e, aggregate, _ in parsed if aggregate == "case"]
        views = store.load_views(conn, case_ids)
        organisations = {v.organisation_id for v in views.values()} | {
            str(e.data.get("organisation_id")) for e, _, name in parsed if name == "opened"
        }
        tracker = Tracker(self.targets, store.load_locales(conn, organisations))
        changed: dict[str, CaseView] = {}
        for event, aggregate, name in parsed:
            if aggregate == "case":
                self._apply_case(tracker, views, changed, event, name)
            elif aggregate == "organisation" and name in LOCALE_EVENTS:
                self._apply_locale(conn, tracker, views, changed, event)
        store.save_views(conn, changed.values())
        with conn.cursor() as cursor:
            store.save_transitions(
                cursor,
                tracker.transitions,
                {v.case_id: (v.organisation_id, v.category) for v in views.values()},
            )

    def _apply_case(
        self,
        tracker: Tracker,
        views: dict[str, CaseView],
        changed: dict[str, CaseView],
        event: Envelope,
        name: str,
    ) -> None:
        try:
            view = tracker.apply(
                views.get(event.subject), event.subject, name, event.data, event.sequence
            )
        except UnknownPolicyVersion as error:
            raise Poison(str(error)) from None
        except (KeyError, ValueError, TypeError) as error:
            raise Poison(f"{event.type} {event.id}: bad payload ({error!r})") from None
        if view is not None:
            views[event.subject] = changed[event.subject] = view

    def _apply_locale(
        self,
        conn: psycopg.Connection[Any],
        tracker: Tracker,
        views: dict[str, CaseView],
        changed: dict[str, CaseView],
        event: Envelope,
    ) -> None:
        try:
            locale = Locale(
                timezone=str(event.data["timezone"]), country=str(event.data["country"])
            )
            at = datetime.fromisoformat(event.data["at"])
        except (KeyError, ValueError, TypeError) as error:
            raise Poison(f"{event.type} {event.id}: bad payload ({error!r})") from None
        organisation = event.subject
        known = tracker.locales.get(organisation)
        if known == locale:
            return
        store.save_locale(conn, organisation, locale)
        tracker.locales = {**tracker.locales, organisation: locale}
        views.update(store.load_open_views_of(conn, organisation, views))
        reason = "customer locale known" if known is None else "customer locale changed"
        for view in views.values():
            if view.organisation_id == organisation and view.status != "resolved":
                before = len(tracker.transitions)
                tracker.relocate(view, at, reason)
                if len(tracker.transitions) > before:
                    changed[view.case_id] = view


def _kind(event: Envelope) -> tuple[str, str]:
    match = _TYPE.match(event.type)
    if match is None:
        raise Poison(f"unknown event type {event.type!r}")
    aggregate, name, version = match.groups()
    if aggregate == "case" and version not in CASE_EVENTS.get(name, ()):
        raise Poison(f"the SLA tracker does not know {event.type!r}")
    if aggregate == "organisation" and name in LOCALE_EVENTS and version != "1":
        raise Poison(f"the SLA tracker does not know {event.type!r}")
    return aggregate, name
