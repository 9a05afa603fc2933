"""A deadline records what proves it, can be re-proven, and provisional ones are flagged
in every calendar that depends on a yearly published holiday schedule (issue 16)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.calendars import HolidaySource
from domain.policy import CustomerLocale, Policy
from domain.sla import Change, Metric, explain, initial_response_target, start
from domain.sla.clock import Clock
from domain.sla.proof import CALENDAR_DATA_UPDATED, differences, refresh
from domain.sla.targets import ResolvedTarget
from domain.values import Category, Severity
from projections.sla.events import Proof

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Thursday 31 December 2026, 17:00 in Shanghai: one business day runs into 2027, a year
# whose official China schedule is not published (in the `holidays` release pinned).
NEW_YEARS_EVE_2026 = datetime(2026, 12, 31, 17, tzinfo=SHANGHAI)
CHINA = CustomerLocale(timezone="Asia/Shanghai", country="CN")


def presales(policy: Policy, customer: CustomerLocale) -> ResolvedTarget:
    return initial_response_target(policy, Category.PRESALES, Severity.B, customer)


def started(target: ResolvedTarget, at: datetime = NEW_YEARS_EVE_2026) -> Clock:
    transitions = start(
        "case-1",
        Metric.INITIAL_RESPONSE,
        "B",
        at,
        target,
        calendar="customer_business",
        policy_version=target.policy_version,
        at=at,
        reason="severity B assigned",
    )
    return transitions[-1].clock


def test_the_pinned_holiday_data_holds_chinas_official_schedules_through_2026() -> None:
    china = HolidaySource("CN")
    assert china.publishes_yearly_schedule
    assert all(china.has_official_schedule(year) for year in range(2022, 2027))
    assert not china.has_official_schedule(2027)


def test_a_presales_deadline_for_a_customer_in_china_is_provisional_without_an_official_schedule(
    default_policy: Policy,
) -> None:
    target = presales(default_policy, CHINA)
    result = explain(NEW_YEARS_EVE_2026, target.length, target.calendar)
    assert result.deadline.at.year == 2027
    assert result.deadline.provisional_years == {2027}
    assert started(target).provisional


def test_a_presales_deadline_in_a_country_with_a_fixed_calendar_is_not_provisional(
    default_policy: Policy,
) -> None:
    us = presales(default_policy, CustomerLocale(timezone="America/New_York", country="US"))
    result = explain(NEW_YEARS_EVE_2026, us.length, us.calendar)
    assert result.deadline.at.year == 2027
    assert result.deadline.provisional_years == frozenset()


def test_a_started_clock_records_its_proof_and_its_event_carries_it(
    default_policy: Policy,
) -> None:
    clock = started(presales(default_policy, CHINA))
    assert clock.proof is not None
    proof = clock.proof.explanation
    assert clock.proof.policy_version == default_policy.version
    assert proof.deadline.at == clock.deadline
    assert proof.calendar_source.startswith("holidays ")
    assert len(proof.data_sha256) == 64
    assert sum((s.length for s in proof.spans), timedelta()) == clock.target
    # The recorded form reads back as the same proof.
    assert Proof.of(clock.proof).to_domain() == clock.proof


def test_the_data_hash_is_the_same_for_the_same_facts_and_differs_for_other_data(
    default_policy: Policy,
) -> None:
    china = presales(default_policy, CHINA)
    poland = presales(default_policy, CustomerLocale(timezone="Asia/Shanghai", country="PL"))
    first = explain(NEW_YEARS_EVE_2026, china.length, china.calendar)
    again = explain(NEW_YEARS_EVE_2026, china.length, china.calendar)
    other = explain(NEW_YEARS_EVE_2026, poland.length, poland.calendar)
    assert first.data_sha256 == again.data_sha256
    assert first.data_sha256 != other.data_sha256


def test_a_recorded_deadline_re_proves_with_no_difference(default_policy: Policy) -> None:
    target = presales(default_policy, CHINA)
    assert differences(started(target), target) == []


def test_a_tampered_span_is_a_difference(default_policy: Policy) -> None:
    target = presales(default_policy, CHINA)
    clock = started(target)
    assert clock.proof is not None
    explanation = clock.proof.explanation
    first = explanation.spans[0]
    tampered = replace(first, end=first.end - timedelta(minutes=30))
    forged = replace(
        clock.proof, explanation=replace(explanation, spans=(tampered, *explanation.spans[1:]))
    )
    found = differences(replace(clock, proof=forged), target)
    assert len(found) == 1 and found[0].startswith("spans: recorded ")


def test_refresh_recomputes_a_deadline_that_newer_data_moves(default_policy: Policy) -> None:
    """'Older data' is simulated: the clock is recorded with a deadline one day earlier
    than the installed data gives (the library cannot be swapped inside a test)."""
    target = presales(default_policy, CHINA)
    clock = started(target)
    assert clock.deadline is not None
    recorded = replace(clock, deadline=clock.deadline - timedelta(days=1))
    now = datetime(2026, 12, 31, 12, tzinfo=UTC)
    result = refresh(recorded, target, now)
    assert result is not None
    assert [t.change for t in result.transitions] == [Change.RECOMPUTED]
    assert result.transitions[0].reason.startswith(CALENDAR_DATA_UPDATED)
    assert result.clock.deadline == clock.deadline
    assert result.clock.transitions == recorded.transitions + 1


def test_refresh_leaves_a_deadline_the_installed_data_still_proves(
    default_policy: Policy,
) -> None:
    target = presales(default_policy, CHINA)
    now = datetime(2026, 12, 31, 12, tzinfo=UTC)
    assert refresh(started(target), target, now) is None
