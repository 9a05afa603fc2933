"""The deadlines support-policy.md promises, computed from the shipped policy."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.policy import CustomerLocale, Policy
from domain.sla import deadline, explain, initial_response_target
from domain.values import Category, Severity

SHANGHAI = ZoneInfo("Asia/Shanghai")
WARSAW = ZoneInfo("Europe/Warsaw")


def shanghai(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def due(
    policy: Policy,
    category: Category,
    severity: Severity,
    opened: datetime,
    customer: CustomerLocale | None = None,
) -> datetime:
    target = initial_response_target(policy, category, severity, customer)
    return deadline(opened, target.length, target.calendar).at


@pytest.mark.parametrize(
    ("category", "severity", "opened", "expected"),
    [
        # Saturday 23:30: half an hour before midnight, the rest on Sunday from 09:00.
        (
            Category.TECHNICAL,
            Severity.B,
            shanghai(2025, 1, 25, 23, 30),
            shanghai(2025, 1, 26, 23, 30),
        ),
        # 03:10 on the Spring Festival: severity A runs 24x7, holidays included.
        (
            Category.TECHNICAL,
            Severity.A,
            shanghai(2025, 1, 29, 3, 10),
            shanghai(2025, 1, 29, 4, 10),
        ),
        # Monday 10:00 + 45 business hours of 09:00-24:00.
        (
            Category.TECHNICAL,
            Severity.C,
            shanghai(2025, 1, 20, 10, 0),
            shanghai(2025, 1, 23, 10, 0),
        ),
        # Friday 17:00 + 9 billing hours: Saturday skipped, Sunday 26th is a make-up workday.
        (Category.BILLING, Severity.B, shanghai(2025, 1, 24, 17, 0), shanghai(2025, 1, 26, 17, 0)),
    ],
    ids=[
        "technical-B-saturday-night",
        "technical-A-holiday",
        "technical-C-monday",
        "billing-B-makeup-day",
    ],
)
def test_policy_examples_hold(
    default_policy: Policy,
    category: Category,
    severity: Severity,
    opened: datetime,
    expected: datetime,
) -> None:
    assert due(default_policy, category, severity, opened) == expected


def test_billing_deadline_skips_the_spring_festival(default_policy: Policy) -> None:
    # Monday 2025-01-27 17:00: one hour left that day, then closed 28 Jan - 4 Feb.
    assert due(default_policy, Category.BILLING, Severity.B, shanghai(2025, 1, 27, 17)) == shanghai(
        2025, 2, 5, 17
    )


def test_explanation_lists_counted_spans_and_skipped_holidays(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.BILLING, Severity.C)
    result = explain(shanghai(2025, 1, 24, 17), target.length, target.calendar)

    counted = [(s.start.astimezone(SHANGHAI), s.end.astimezone(SHANGHAI)) for s in result.spans]
    assert counted == [
        (shanghai(2025, 1, 24, 17), shanghai(2025, 1, 24, 18)),
        (shanghai(2025, 1, 26, 9), shanghai(2025, 1, 26, 18)),
        (shanghai(2025, 1, 27, 9), shanghai(2025, 1, 27, 18)),
        (shanghai(2025, 2, 5, 9), shanghai(2025, 2, 5, 17)),
    ]
    assert [s.makeup_workday for s in result.spans] == [False, True, False, False]
    assert sum((s.length for s in result.spans), start=target.length * 0) == target.length
    reasons = {d.day.isoformat(): d.reason for d in result.skipped_days}
    assert reasons["2025-01-25"] == "weekend"
    assert "Spring Festival" in reasons["2025-01-29"]
    assert "substituted" in reasons["2025-02-03"]
    assert result.deadline.at == shanghai(2025, 2, 5, 17)


def test_continuous_calendar_explains_one_span_not_one_per_day(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.TECHNICAL, Severity.A)
    result = explain(shanghai(2025, 1, 29, 23, 30), target.length * 30, target.calendar)
    assert len(result.spans) == 1
    assert result.spans[0].length == target.length * 30


def test_deadline_in_a_year_without_official_china_schedule_is_flagged(
    default_policy: Policy,
) -> None:
    target = initial_response_target(default_policy, Category.BILLING, Severity.C)
    result = deadline(shanghai(2026, 12, 31, 17), target.length, target.calendar)
    assert result.is_provisional
    assert result.provisional_years == frozenset({2027})


def test_deadline_within_published_years_is_not_provisional(default_policy: Policy) -> None:
    target = initial_response_target(default_policy, Category.BILLING, Severity.C)
    assert not deadline(shanghai(2026, 6, 1, 10), target.length, target.calendar).is_provisional


def test_presales_deadline_follows_customer_time_across_dst(default_policy: Policy) -> None:
    warsaw = CustomerLocale(timezone="Europe/Warsaw", country="PL")
    # Friday 17:00 CET; clocks go forward on Sunday 30 March; Monday 09:00-17:00 CEST.
    opened = datetime(2025, 3, 28, 17, tzinfo=WARSAW)
    result = due(default_policy, Category.PRESALES, Severity.B, opened, warsaw)
    assert result == datetime(2025, 3, 31, 17, tzinfo=WARSAW)
    assert result.astimezone(WARSAW).utcoffset() == timedelta(hours=2)
    assert opened.utcoffset() == timedelta(hours=1)


def test_presales_deadline_skips_the_customers_public_holiday(default_policy: Policy) -> None:
    warsaw = CustomerLocale(timezone="Europe/Warsaw", country="PL")
    # Wednesday 30 April 17:00; 1 May (Labour Day) is a Polish holiday, 2 May a Friday.
    opened = datetime(2025, 4, 30, 17, tzinfo=WARSAW)
    result = due(default_policy, Category.PRESALES, Severity.B, opened, warsaw)
    assert result == datetime(2025, 5, 2, 17, tzinfo=WARSAW)
