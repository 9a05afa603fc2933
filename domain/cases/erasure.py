"""What a case forgets when its personal data is erased: every field people typed or
that names a person (the fields `privacy.fields` seals), replaced by `ERASED`.

Status, severities, times, actors and ids stay: the SLA figures and the audit trail
are computed from them and must stay verifiable after an erasure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.cases.state import INITIAL_ASSESSMENT
from domain.values import ERASED

if TYPE_CHECKING:
    from domain.cases.aggregate import ServiceRequest


def forget_case(case: ServiceRequest) -> None:
    """Replace the case's personal data by `ERASED` (applied by `PersonalDataErased`)."""
    case.title = case.description = ERASED
    case.contact_phone = case.contact_email = ERASED
    if case.caller_phone is not None:
        case.caller_phone = ERASED
    case.notes = [note._replace(text=ERASED) for note in case.notes]
    case.unresponsive_records = [r._replace(requested=ERASED) for r in case.unresponsive_records]
    case.severity_history = [
        change if change.reason == INITIAL_ASSESSMENT else change._replace(reason=ERASED)
        for change in case.severity_history
    ]
    if case.satisfaction is not None and case.satisfaction.comment is not None:
        case.satisfaction = case.satisfaction._replace(comment=ERASED)
