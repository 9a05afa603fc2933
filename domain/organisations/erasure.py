"""What an organisation forgets when its personal data is erased: its contacts (phone
numbers, e-mail addresses, the partner's contact) and the numbers of its callers'
verifications. Its name, admins' principal ids, agreement and locale stay: they are
not a person's data, and the rules and SLA clocks need them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from domain.values import ERASED

if TYPE_CHECKING:
    from domain.organisations.aggregate import Organisation


def forget_organisation(organisation: Organisation) -> None:
    """Drop the contacts and blank the verifications' numbers (applied on erasure)."""
    organisation.phones = set()
    organisation.emails = set()
    if organisation.partner_contact is not None:
        organisation.partner_contact = ERASED
    organisation.verifications = {
        verification_id: replace(verification, caller_phone=ERASED, send_to=ERASED)
        for verification_id, verification in organisation.verifications.items()
    }
