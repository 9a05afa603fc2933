"""Service requests: opening, severity, responses, resolution and satisfaction."""

from domain.cases.aggregate import ServiceRequest
from domain.cases.state import (
    CaseStatus,
    Note,
    NoteVisibility,
    Satisfaction,
    SeverityChange,
    UnresponsiveRecord,
)

__all__ = [
    "CaseStatus",
    "Note",
    "NoteVisibility",
    "Satisfaction",
    "ServiceRequest",
    "SeverityChange",
    "UnresponsiveRecord",
]
