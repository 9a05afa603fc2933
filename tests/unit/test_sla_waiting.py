"""The expected waiting time promised at opening, computed from known observations."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.cases import ServiceRequest
from domain.policy import CustomerLocale, Policy
from domain.sla import initial_response_target
from domain.sla.waiting import (
    POLICY_TARGET,
    RECENT_MEDIAN,
    WaitingObservation,
    estimate_wait,
    promise,
)
from domain.values import Category, Severity
from tests.unit.conftest import OpenCase

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOCALE = CustomerLocale(timezone="Europe/Warsaw", country="PL")
HOUR = 3600.0


def shanghai(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def seen(
    queue_ahead: int, responses: int, median_hours: float | None, opened: datetime, days: int = 1
) -> WaitingObservation:
    median = None if median_hours is None else median_hours * HOUR
    return WaitingObservation(queue_ahead, responses, median, opened - timedelta(days=days), days)


def test_with_no_recent_first_response_the_promise_is_the_policy_target(policy: Policy) -> None:
    opened = shanghai(2025, 3, 3, 10, 0)  # Monday 10:00; B runs 09:00-24:00 every day
    estimate = promise({}, policy, Category.TECHNICAL, Severity.B, LOCALE, opened)
    # One business day of 15 hours: 14 on Monday, 1 on Tuesday from 09:00.
    assert estimate.expected_at == shanghai(2025, 3, 4, 10, 0)
    details = estimate.details
    assert (details["method"], details["business_seconds"]) == (POLICY_TARGET, 15 * 3600)
    assert (details["severity"], details["calendar"]) == ("B", "extended_daily")
    assert details["sample_size"] == 0 and details["rate_per_business_hour"] is None
    assert "no first response" in details["basis"]


def test_a_queue_longer_than_usual_stretches_the_recent_median(policy: Policy) -> None:
    opened = shanghai(2025, 3, 3, 10, 0)
    # The last day: 15 business hours, 4 first responses (a rate of 4/15 an hour) with a
    # median of 2.5 h, so usually 4/15 * 2.5 = 2/3 of a case waits. Three wait now:
    # 2.5 h * (3 + 1) / (2/3 + 1) = 6 h.
    observation = seen(queue_ahead=3, responses=4, median_hours=2.5, opened=opened)
    estimate = promise({"B": observation}, policy, Category.TECHNICAL, Severity.B, LOCALE, opened)
    assert estimate.expected_at == shanghai(2025, 3, 3, 16, 0)
    details = estimate.details
    assert details["method"] == RECENT_MEDIAN
    assert details["business_seconds"] == 6 * 3600
    assert details["rate_per_business_hour"] == pytest.approx(4 / 15)
    assert (details["queue_ahead"], details["sample_size"]) == (3, 4)
    assert details["median_seconds"] == 2.5 * HOUR and details["window_days"] == 1


def test_an_empty_queue_promises_less_than_the_median_and_the_wait_skips_closed_hours(
    policy: Policy,
) -> None:
    opened = shanghai(2025, 3, 3, 23, 0)  # one business hour left on Monday
    # 30 responses over the last day's 15 business hours (2 an hour), median 1 h: usually
    # two cases wait. None does now: 1 h * 1 / 3 = 20 minutes.
    quiet = seen(queue_ahead=0, responses=30, median_hours=1.0, opened=opened)
    assert promise(
        {"B": quiet}, policy, Category.TECHNICAL, Severity.B, LOCALE, opened
    ).expected_at == shanghai(2025, 3, 3, 23, 20)
    # Eight ahead: 1 h * 9 / 3 = 3 h, of which 1 on Monday and 2 on Tuesday from 09:00.
    busy = seen(queue_ahead=8, responses=30, median_hours=1.0, opened=opened)
    assert promise(
        {"B": busy}, policy, Category.TECHNICAL, Severity.B, LOCALE, opened
    ).expected_at == shanghai(2025, 3, 4, 11, 0)


def test_the_rate_counts_only_business_hours_of_the_window(policy: Policy) -> None:
    # Billing runs 09:00-18:00 on working days: a window from Saturday to Monday 10:00
    # holds one business hour, so 3 responses are 3 an hour.
    opened = shanghai(2025, 3, 3, 10, 0)
    observation = seen(queue_ahead=0, responses=3, median_hours=1.0, opened=opened, days=2)
    target = promise(
        {"B": observation}, policy, Category.BILLING, Severity.B, LOCALE, opened
    ).details
    assert target["rate_per_business_hour"] == pytest.approx(3.0)
    assert target["calendar"] == "china_business"


def test_an_opening_given_observations_records_its_triage_severitys_promise(
    open_case: OpenCase,
) -> None:
    opened_at = shanghai(2025, 3, 3, 10, 0)
    observations = {
        "A": seen(queue_ahead=9, responses=9, median_hours=9.0, opened=opened_at),
        "B": seen(queue_ahead=3, responses=4, median_hours=2.5, opened=opened_at),
    }
    case = open_case(waiting=observations, at=opened_at)
    [opened] = case.collect_events()
    assert isinstance(opened, ServiceRequest.Opened)
    # Acme has a standard agreement: the triage severity, and so the promise, is B's.
    assert opened.triage_severity == "B"
    assert opened.expected_response_at == shanghai(2025, 3, 3, 16, 0)
    assert opened.waiting_estimate is not None
    assert opened.waiting_estimate["severity"] == "B"


def test_an_opening_without_observations_records_no_promise(open_case: OpenCase) -> None:
    [opened] = open_case().collect_events()
    assert isinstance(opened, ServiceRequest.Opened)
    assert (opened.expected_response_at, opened.waiting_estimate) == (None, None)


def test_the_estimator_is_the_same_for_any_opening_offset(policy: Policy) -> None:
    # The instant is the same whatever offset the opening carries.
    target = initial_response_target(policy, Category.TECHNICAL, Severity.B)
    opened = shanghai(2025, 3, 3, 10, 0)
    observation = seen(queue_ahead=3, responses=4, median_hours=2.5, opened=opened)
    local = estimate_wait(observation, target, severity="B", calendar="x", opened_at=opened)
    utc = estimate_wait(
        observation,
        target,
        severity="B",
        calendar="x",
        opened_at=opened.astimezone(ZoneInfo("UTC")),
    )
    assert local.expected_at == utc.expected_at
