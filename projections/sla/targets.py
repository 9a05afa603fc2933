"""Targets by policy version: a replay recomputes the deadlines of the policy in force.

Every SLA-relevant event records the policy version it was decided under. The SLA
projection keeps the current policy and any archived ones; an event naming a version it
does not know cannot be applied until an operator supplies that policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from domain.policy.model import CustomerLocale, Policy
from domain.sla.targets import ResolvedTarget, follow_up_target, initial_response_target
from domain.values import Category, Severity


class UnknownPolicyVersion(LookupError):
    """An event names a policy version this process was not given."""


class LocaleUnknown(LookupError):
    """The target runs on the customer's calendar and their locale is not known yet."""


@dataclass(frozen=True)
class Locale:
    """The customer's zone and country, as the organisation's events gave them."""

    timezone: str
    country: str


class TargetBook:
    """Resolved targets per (policy version, category, severity, customer locale)."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self._policies = {policy.version: policy for policy in policies}
        if not self._policies:
            raise ValueError("a target book needs at least one policy")
        # Resolving a calendar builds its holiday source: do it once per combination.
        self.initial = lru_cache(maxsize=4096)(self._initial)
        self.follow_up = lru_cache(maxsize=4096)(self._follow_up)

    @property
    def versions(self) -> list[str]:
        return sorted(self._policies)

    def policy(self, version: str) -> Policy:
        try:
            return self._policies[version]
        except KeyError:
            known = ", ".join(self.versions)
            raise UnknownPolicyVersion(
                f"policy version {version!r} is unknown here (known: {known}); "
                "add its file to CASEBOOK_POLICY_ARCHIVE_DIR and replay"
            ) from None

    def has_follow_up(self, version: str, category: str, severity: str) -> bool:
        """Whether the policy sets a follow-up cadence for this category and severity."""
        spec = self.policy(version).target(Category(category), Severity(severity))
        return spec.follow_up_cadence is not None

    def depends_on_customer(self, version: str, category: str, severity: str) -> bool:
        """Whether the target's calendar follows the customer's zone or holidays."""
        policy = self.policy(version)
        spec = policy.target(Category(category), Severity(severity))
        return policy.calendars[spec.calendar].depends_on_customer

    def calendar_name(self, version: str, category: str, severity: str) -> str:
        return self.policy(version).target(Category(category), Severity(severity)).calendar

    def _initial(
        self, version: str, category: str, severity: str, locale: Locale | None
    ) -> ResolvedTarget:
        policy = self.policy(version)
        customer = self._customer(policy, category, severity, locale)
        return initial_response_target(policy, Category(category), Severity(severity), customer)

    def _follow_up(
        self, version: str, category: str, severity: str, locale: Locale | None
    ) -> ResolvedTarget | None:
        policy = self.policy(version)
        customer = self._customer(policy, category, severity, locale)
        return follow_up_target(policy, Category(category), Severity(severity), customer)

    @staticmethod
    def _customer(
        policy: Policy, category: str, severity: str, locale: Locale | None
    ) -> CustomerLocale | None:
        spec = policy.target(Category(category), Severity(severity))
        if not policy.calendars[spec.calendar].depends_on_customer:
            return None
        if locale is None:
            raise LocaleUnknown(f"calendar {spec.calendar!r} needs the customer's locale")
        return CustomerLocale(timezone=locale.timezone, country=locale.country)
