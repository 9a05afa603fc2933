"""Which severities a request may have (policy §4), as refusals naming the rule."""

from __future__ import annotations

from domain.errors import DomainError
from domain.policy.model import Policy
from domain.values import Agreement, Category, Severity


class SeverityNeedsAgreement(DomainError):
    """Severity A is only for customers with an advanced online-services agreement."""

    rule = "severity-a-requires-advanced-agreement"


class SeverityNotForCategory(DomainError):
    """Severity A is only for technical requests."""

    rule = "severity-a-only-for-technical"


class SeverityAboveCategoryCap(DomainError):
    """A category's requests may not be more severe than its cap (billing: B)."""

    rule = "category-severity-cap"


def check_severity_for_category(policy: Policy, category: Category, severity: Severity) -> None:
    """Refuse a severity the category can never have, whatever the agreement."""
    cap = policy.categories[category].max_severity
    restricted_to = policy.severities[severity].only_categories
    if restricted_to is not None and category not in restricted_to:
        allowed = ", ".join(c.value for c in restricted_to)
        raise SeverityNotForCategory(
            f"severity {severity.value} is only for {allowed} requests, not {category.value}"
        )
    if severity.is_more_severe_than(cap):
        raise SeverityAboveCategoryCap(
            f"{category.value} requests are capped at severity {cap.value}; "
            f"{severity.value} is not allowed"
        )


def check_severity_allowed(
    policy: Policy, category: Category, severity: Severity, agreement: Agreement
) -> None:
    """Refuse a severity this organisation's request may not have (§4)."""
    check_severity_for_category(policy, category, severity)
    required = policy.severities[severity].requires_agreement
    if required is not None and agreement != required:
        raise SeverityNeedsAgreement(
            f"severity {severity.value} needs an {required.value} online-services agreement; "
            f"this organisation has a {Agreement(agreement).value} one"
        )


def triage_severity(policy: Policy, category: Category, agreement: Agreement) -> Severity:
    """The strictest severity the policy allows this request (§4): an unassessed case's
    clock runs on its target, so a real severity-A outage in triage is never invisible."""
    for severity in sorted(Severity, key=lambda s: s.rank, reverse=True):
        try:
            check_severity_allowed(policy, category, severity, agreement)
        except DomainError:
            continue
        return severity
    raise ValueError(f"the policy allows no severity for {category.value} requests")
