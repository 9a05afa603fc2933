"""The policy is data: a versioned TOML file, validated, with errors naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from casebook.policy_source import default_policy_text
from domain.policy import PolicyError, parse_policy
from domain.sla import deadline, initial_response_target
from domain.values import Agreement, Category, Severity


def test_shipped_policy_reproduces_the_support_policy() -> None:
    policy = parse_policy(default_policy_text())
    assert policy.at_risk_ratio == 0.8
    assert policy.severities[Severity.A].requires_agreement is Agreement.ADVANCED
    assert policy.severities[Severity.A].only_categories == (Category.TECHNICAL,)
    assert policy.categories[Category.BILLING].max_severity is Severity.B
    assert policy.allowed_severities(Category.PRESALES) == [Severity.B, Severity.C]
    b = initial_response_target(policy, Category.TECHNICAL, Severity.B)
    c = initial_response_target(policy, Category.TECHNICAL, Severity.C)
    assert (b.length, c.length) == (timedelta(hours=15), timedelta(hours=45))
    billing = initial_response_target(policy, Category.BILLING, Severity.B)
    assert billing.length == timedelta(hours=9)


def test_changing_the_file_changes_the_deadline() -> None:
    text = default_policy_text().replace(
        'targets.B = { initial_response = { business_days = 1 }, calendar = "extended_daily" }',
        'targets.B = { initial_response = { hours = 4 }, calendar = "extended_daily" }',
    )
    policy = parse_policy(text)
    target = initial_response_target(policy, Category.TECHNICAL, Severity.B)
    opened = datetime(2025, 1, 20, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert deadline(opened, target.length, target.calendar).at == opened + timedelta(hours=4)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("at_risk_ratio = 0.8", "at_risk_ratio = 1.5", "field at_risk_ratio"),
        ('max_severity = "B"', 'max_severity = "Z"', "field categories.billing.max_severity"),
        ('timezone = "Asia/Shanghai"', 'timezone = "Asia/Atlantis"', "unknown time zone"),
        ('holidays = "CN"', 'holidays = "XX"', "country 'XX'"),
        ('opens = "09:00"', 'opens = "25:00"', "field calendars.extended_daily.opens"),
        ('closes = "18:00"', 'closes = "08:00"', "must be before closes"),
        ('calendar = "china_business" }', 'calendar = "mars" }', "unknown calendar 'mars'"),
        ("version = ", "versio = ", "field version"),
        ("{ hours = 1 }", "{ hours = 1, business_days = 2 }", "exactly one of"),
    ],
)
def test_a_wrong_policy_file_is_refused_naming_the_field(old: str, new: str, field: str) -> None:
    text = default_policy_text()
    assert old in text
    with pytest.raises(PolicyError) as refused:
        parse_policy(text.replace(old, new, 1), source="policy.toml")
    assert field in str(refused.value)
    assert str(refused.value).startswith("policy.toml: ")


def test_a_policy_missing_a_target_for_an_allowed_severity_is_refused() -> None:
    text = default_policy_text().replace(
        'targets.C = { initial_response = { business_days = 3 }, calendar = "china_business" }\n',
        "",
    )
    with pytest.raises(PolicyError, match=r"categories\.billing\.targets: missing severity C"):
        parse_policy(text)


def test_a_file_that_is_not_toml_is_refused() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("version = [", source="broken.toml")


def test_the_caller_verification_code_is_policy_data_with_defaults_for_older_versions() -> None:
    shipped = parse_policy(default_policy_text()).caller_verification
    assert (shipped.code_digits, shipped.lifetime, shipped.max_attempts) == (
        6,
        timedelta(minutes=10),
        5,
    )
    section = default_policy_text().index("[caller_verification]")
    older = parse_policy(default_policy_text()[:section]).caller_verification
    assert older == shipped
    stricter = default_policy_text().replace("max_attempts = 5", "max_attempts = 3")
    assert parse_policy(stricter).caller_verification.max_attempts == 3
    by_days = default_policy_text().replace(
        "valid_for = { minutes = 10 }", "valid_for = { business_days = 1 }"
    )
    with pytest.raises(PolicyError, match="caller_verification: valid_for is wall-clock time"):
        parse_policy(by_days)
