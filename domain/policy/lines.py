"""The support phone lines (§2): one number per country or region, its hours and languages.

Data of the policy file (`[support_lines.<id>]`); the line of a country is its own, or
the fallback line (China's operator number in the shipped policy) where it has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47, e.g. en, zh-Hans


class SupportLineSpec(BaseModel):
    """One support number: who calls it, when it is staffed, in which languages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str = Field(min_length=3, description="As callers dial it, e.g. 1 800 865 9408.")
    countries: tuple[str, ...] = Field(description="ISO 3166 codes of the countries it serves.")
    languages: tuple[str, ...] = Field(min_length=1, description="BCP 47 language tags.")
    calendar: str = Field(description="The policy calendar of the hours it is staffed.")
    hours: str = Field(min_length=1, description="The hours in words, for the caller.")
    fallback: bool = Field(
        default=False, description="The line of every country that has none of its own."
    )

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [code for code in value if not _COUNTRY.match(code)]
        if wrong:
            raise ValueError(f"not ISO 3166 country codes: {', '.join(wrong)}")
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [tag for tag in value if not _LANGUAGE.match(tag)]
        if wrong:
            raise ValueError(f"not BCP 47 language tags: {', '.join(wrong)}")
        return value


@dataclass(frozen=True)
class LineFor:
    """The line a caller from a country uses: its id, and whether it is the fallback."""

    line_id: str
    line: SupportLineSpec
    fallback: bool


def check_lines(lines: dict[str, SupportLineSpec], calendars: set[str]) -> None:
    """Refuse lines on unknown calendars, a country on two lines, or two fallbacks."""
    fallbacks = [line_id for line_id, line in lines.items() if line.fallback]
    if len(fallbacks) > 1:
        raise ValueError(f"support_lines: one fallback line at most, not {fallbacks}")
    served: dict[str, str] = {}
    for line_id, line in lines.items():
        if line.calendar not in calendars:
            raise ValueError(f"support_lines.{line_id}.calendar: unknown {line.calendar!r}")
        for country in line.countries:
            if country in served:
                raise ValueError(
                    f"support_lines: {country} is on both {served[country]} and {line_id}"
                )
            served[country] = line_id


def line_for(lines: dict[str, SupportLineSpec], country: str) -> LineFor | None:
    """The line a caller from `country` uses; None when the policy has no line for it."""
    code = country.upper()
    for line_id, line in lines.items():
        if code in line.countries:
            return LineFor(line_id, line, fallback=False)
    for line_id, line in lines.items():
        if line.fallback:
            return LineFor(line_id, line, fallback=True)
    return None
