"""The support phone lines of the policy in force (§2): numbers, hours and languages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import Caller, CasebookApp, GuardedRoute
from api.routes.commanding import READ_RESPONSES
from domain.policy.lines import SupportLineSpec

router = APIRouter(prefix="/support-lines", tags=["support lines"], route_class=GuardedRoute)


class SupportLineView(BaseModel):
    """One support number, who calls it, when and in which languages it answers."""

    id: str = Field(description="What a phone opening names as its support_line.")
    number: str
    countries: list[str]
    languages: list[str]
    hours: str
    calendar: str = Field(description="The policy calendar of its staffed hours.")
    fallback: bool = Field(description="The line of every country without its own.")

    @classmethod
    def of(cls, line_id: str, line: SupportLineSpec) -> SupportLineView:
        return cls(
            id=line_id,
            number=line.number,
            countries=list(line.countries),
            languages=list(line.languages),
            hours=line.hours,
            calendar=line.calendar,
            fallback=line.fallback,
        )


class SupportLinesView(BaseModel):
    """The lines of the policy in force; for a country, the one its callers dial."""

    policy_version: str
    country: str | None
    lines: list[SupportLineView]


Country = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166 code: only the line its callers dial."),
]


@router.get("", responses=READ_RESPONSES)
def list_support_lines(
    caller: Caller, casebook: CasebookApp, country: Country = None
) -> SupportLinesView:
    """The support lines; with `country`, its own line or, without one, the fallback."""
    policy = casebook.policy
    if country is None:
        lines = [SupportLineView.of(i, line) for i, line in policy.support_lines.items()]
    else:
        found = policy.support_line(country)
        lines = [SupportLineView.of(found.line_id, found.line)] if found else []
    return SupportLinesView(
        policy_version=policy.version, country=country.upper() if country else None, lines=lines
    )
