"""Service health before filing (policy §1): incidents in force are shown first.

Pure: the write side passes the incidents in force and the request's answer; the
result is the incident the new case is linked to, if any.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from domain.incidents import errors
from domain.incidents.aggregate import ServiceIncident


@dataclass(frozen=True)
class IncidentAnswer:
    """What an opening says about incidents it was shown: linked to one, or unrelated."""

    acknowledged: UUID | None = None
    unrelated: bool = False

    def __post_init__(self) -> None:
        if self.acknowledged is not None and self.unrelated:
            raise errors.IncidentAnswerAmbiguous(
                "Send either incident_acknowledged (the request is about that incident) or "
                "incident_unrelated true, not both."
            )


def incident_to_link(
    in_force: Sequence[ServiceIncident],
    *,
    category: str,
    service: str | None,
    answer: IncidentAnswer,
    acknowledged: ServiceIncident | None,
) -> ServiceIncident | None:
    """The incident a new request is linked to; refuses one that must see incidents first.

    `acknowledged` is the incident `answer.acknowledged` names, loaded. Naming one of the
    incidents that affect the request, or saying it is unrelated, answers them all;
    naming an incident when none affects it (it was closed meanwhile, say) still links.
    """
    affecting = [i for i in in_force if i.affects(category, service)]
    if answer.unrelated:
        return None
    if acknowledged is not None and (not affecting or acknowledged.id in {i.id for i in affecting}):
        return acknowledged
    if affecting:
        names = "; ".join(i.summary.rstrip(". ") for i in affecting)
        raise errors.IncidentShownFirst(
            f"Known service incident(s) may explain this request: {names}. Nothing was "
            "filed. To file it about an incident, send incident_acknowledged with its id; "
            "if it is unrelated, send incident_unrelated true.",
            [
                errors.notice(i.id, i.summary, i.services, i.categories, i.started_at)
                for i in affecting
            ],
        )
    return None
