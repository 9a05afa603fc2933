"""Rules for an organisation's profile data: contacts, locale and purchase channel."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from domain.organisations import errors
from domain.policy.model import CustomerLocale
from domain.values import Agreement, ContactKind


class PurchaseChannel(StrEnum):
    """Where the subscription was bought; a partner is the first contact (§1)."""

    DIRECT = "direct"
    PARTNER = "partner"


_PHONE = re.compile(r"^\+?\d{5,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_phone(phone: str) -> str:
    """One spelling per number: '+48 (22) 123-45-67' becomes '+48221234567'."""
    return re.sub(r"[\s().\-/]", "", phone)


def normalise(kind: ContactKind, value: str) -> str:
    """The profile's spelling of a contact; refuses a malformed one."""
    if ContactKind(kind) is ContactKind.PHONE:
        phone = normalise_phone(value)
        if not _PHONE.match(phone):
            raise errors.InvalidContact(f"{value!r} is not a phone number.")
        return phone
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise errors.InvalidContact(f"{value!r} is not an e-mail address.")
    return email


def kind_of(contact: str) -> ContactKind:
    """E-mail when it has an '@', phone otherwise."""
    return ContactKind.EMAIL if "@" in contact else ContactKind.PHONE


def locale(country: str, timezone: str) -> CustomerLocale:
    """A validated locale; refuses an unknown country or IANA zone."""
    try:
        return CustomerLocale(timezone=timezone, country=country)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise errors.InvalidOrganisationDetails(
            f"Unknown country {country!r} or time zone {timezone!r}."
        ) from error


def principal(principal_id: str) -> str:
    """A non-empty principal id."""
    if not principal_id.strip():
        raise errors.InvalidOrganisationDetails("An administrator needs a principal id.")
    return principal_id


def distinct(values: Iterable[str]) -> tuple[str, ...]:
    """Values without repeats, in their first order."""
    return tuple(dict.fromkeys(values))


def check_partner(
    channel: PurchaseChannel, partner_name: str | None, partner_contact: str | None
) -> None:
    """A partner purchase names its partner and contact; a direct one names none."""
    if PurchaseChannel(channel) is PurchaseChannel.PARTNER:
        if not (partner_name or "").strip() or not (partner_contact or "").strip():
            raise errors.PartnerDetailsInvalid(
                "A subscription bought through a partner needs the partner's name and contact."
            )
    elif partner_name or partner_contact:
        raise errors.PartnerDetailsInvalid("A direct purchase has no partner details.")


def registration(
    *,
    name: str,
    country: str,
    timezone: str,
    agreement: Agreement,
    admins: Iterable[str],
    phones: Iterable[str],
    emails: Iterable[str],
    purchase_channel: PurchaseChannel,
    partner_name: str | None,
    partner_contact: str | None,
) -> dict[str, Any]:
    """The checked and normalised attributes of a `Registered` event."""
    if not name.strip():
        raise errors.InvalidOrganisationDetails("An organisation needs a name.")
    where = locale(country, timezone)
    admin_ids = distinct(principal(p) for p in admins)
    if not admin_ids:
        raise errors.OrganisationNeedsAnAdmin(
            "An organisation needs at least one customer administrator."
        )
    check_partner(purchase_channel, partner_name, partner_contact)
    return {
        "name": name.strip(),
        "country": where.country,
        "timezone": where.timezone,
        "agreement": Agreement(agreement),
        "purchase_channel": PurchaseChannel(purchase_channel),
        "partner_name": partner_name,
        "partner_contact": partner_contact,
        "admins": admin_ids,
        "phones": distinct(normalise(ContactKind.PHONE, p) for p in phones),
        "emails": distinct(normalise(ContactKind.EMAIL, e) for e in emails),
    }
