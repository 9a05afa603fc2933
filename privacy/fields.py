"""Which fields of which events hold personal data: the fields sealed under a data key
in the event store and left off the topics unless a deployment publishes them.

Phones, e-mails and people's contacts, plus free text: people type names, numbers and
addresses into titles, notes and reasons, and nothing can tell them apart. An
incident's summary is not: supervisors write it for every customer to read. Nor is an
erasure's reason: it names the request, and the audit keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.cases import events as case_events
from domain.organisations import events as organisation_events

PERSONAL_FIELDS_OF: Mapping[type, tuple[str, ...]] = {
    case_events.Opened: ("contact_phone", "contact_email", "caller_phone", "title", "description"),
    case_events.Escalated: ("reason",),
    case_events.CustomerUnresponsive: ("requested",),
    case_events.Downgraded: ("reason", "evidence_requested"),
    case_events.Responded: ("message_summary",),
    case_events.NoteAdded: ("text",),
    case_events.Resolved: ("resolution",),
    case_events.Reopened: ("reason",),
    case_events.SatisfactionRecorded: ("comment",),
    organisation_events.Registered: ("phones", "emails", "partner_contact"),
    organisation_events.ContactRegistered: ("value",),
    organisation_events.ContactRemoved: ("value",),
    organisation_events.PurchaseChannelChanged: ("partner_contact",),
    organisation_events.CallerVerificationRequested: ("caller_phone", "send_to"),
}


_FOUND: dict[type, tuple[str, ...]] = {}


def personal_fields(event_class: type) -> tuple[str, ...]:
    """The personal fields of an event class (an aggregate's subclass of one above)."""
    found = _FOUND.get(event_class)
    if found is None:
        listed = (PERSONAL_FIELDS_OF[c] for c in event_class.__mro__ if c in PERSONAL_FIELDS_OF)
        found = _FOUND[event_class] = next(listed, ())
    return found
