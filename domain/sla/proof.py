"""Re-proving a recorded deadline, and refreshing a provisional one (docs/sla.md).

A clock records the proof of its deadline when the deadline is set (`DeadlineProof`).
`differences` recomputes that proof from the clock's recorded inputs (its start, its
target under its policy version, its calendar) with the calendar data installed now and
names every way the record and the recomputation part; `refresh` recomputes a
provisional deadline with newer calendar data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from domain.sla.business_time import (
    CountedSpan,
    DeadlineExplanation,
    DeadlineProof,
    deadline,
    explain,
)
from domain.sla.clock import Clock, Transition, recompute
from domain.sla.targets import ResolvedTarget

CALENDAR_DATA_UPDATED = "calendar data updated"


def differences(clock: Clock, target: ResolvedTarget) -> list[str]:
    """How `clock`'s recorded deadline and proof differ from a recomputation under
    `target` (its policy version's target, resolved with the installed calendar data)."""
    found: list[str] = []
    if clock.deadline is None:
        return found  # waiting for the customer's locale: nothing was decided
    again = explain(clock.started_at, target.length, target.calendar)
    at_risk = deadline(clock.started_at, target.length * target.at_risk_ratio, target.calendar)
    _compare(found, "target", clock.target, target.length)
    _compare(found, "deadline", _iso(clock.deadline), _iso(again.deadline.at))
    _compare(found, "at-risk instant", _iso(clock.at_risk_at), _iso(at_risk.at))
    if clock.proof is None:
        return found
    recorded = clock.proof.explanation
    _compare(found, "proof's policy version", clock.proof.policy_version, clock.policy_version)
    _compare(found, "proof's deadline", _iso(recorded.deadline.at), _iso(clock.deadline))
    _compare(found, "calendar", recorded.calendar, again.calendar)
    _compare(found, "spans", _spans(recorded), _spans(again))
    _compare(found, "skipped days", _skipped(recorded), _skipped(again))
    _compare(found, "provisional years", _years(recorded), _years(again))
    if recorded.data_sha256 != again.data_sha256:
        found.append(
            f"calendar data: recorded sha256 {recorded.data_sha256[:12]} "
            f"({recorded.calendar_source}), installed {again.data_sha256[:12]} "
            f"({again.calendar_source})"
        )
    return found


@dataclass(frozen=True)
class Refreshed:
    """A provisional clock recomputed with the calendar data installed now: `transitions`
    (a recomputation and what time then did) when its deadline moved, none when only
    its proof changed."""

    clock: Clock
    transitions: list[Transition]


def refresh(clock: Clock, target: ResolvedTarget, at: datetime) -> Refreshed | None:
    """`clock` recomputed at `at` with the installed calendar data, or None if its
    recorded deadline and proof stand."""
    if clock.is_finished or clock.deadline is None:
        return None
    again = explain(clock.started_at, target.length, target.calendar)
    at_risk = deadline(clock.started_at, target.length * target.at_risk_ratio, target.calendar)
    if again.deadline.at != clock.deadline or at_risk.at != clock.at_risk_at:
        source = again.calendar_source
        transitions = recompute(
            clock,
            clock.severity,
            target,
            calendar=clock.calendar,
            at=at,
            reason=f"{CALENDAR_DATA_UPDATED} ({source})",
        )
        return Refreshed(transitions[-1].clock, transitions)
    proof = DeadlineProof(target.policy_version, again)
    if clock.proof is not None and _same_proof(clock.proof.explanation, again):
        return None
    # The deadline stands; its proof now names the data that proves it (e.g. a year
    # whose official schedule arrived without moving anything).
    return Refreshed(replace(clock, proof=proof, provisional=again.deadline.is_provisional), [])


def _same_proof(recorded: DeadlineExplanation, again: DeadlineExplanation) -> bool:
    return (
        recorded.data_sha256 == again.data_sha256
        and _years(recorded) == _years(again)
        and _spans(recorded) == _spans(again)
    )


def _compare(found: list[str], what: str, recorded: object, recomputed: object) -> None:
    if recorded != recomputed:
        found.append(f"{what}: recorded {recorded}, recomputed {recomputed}")


def _iso(instant: datetime | None) -> str | None:
    return instant.astimezone(UTC).isoformat() if instant is not None else None


def _spans(explanation: DeadlineExplanation) -> str:
    return "; ".join(_span(span) for span in explanation.spans) or "none"


def _span(span: CountedSpan) -> str:
    makeup = " make-up" if span.makeup_workday else ""
    return f"{_iso(span.start)}..{_iso(span.end)}{makeup}"


def _skipped(explanation: DeadlineExplanation) -> str:
    return ", ".join(day.day.isoformat() for day in explanation.skipped_days) or "none"


def _years(explanation: DeadlineExplanation) -> list[int]:
    return sorted(explanation.deadline.provisional_years)
