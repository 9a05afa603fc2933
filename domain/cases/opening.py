"""What an opening records beside the request itself, decided by the domain at opening."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.cases.errors import SupportLineOnlyByPhone, SupportLineUnknown
from domain.organisations import Organisation
from domain.policy import Policy
from domain.policy.model import CustomerLocale
from domain.policy.rules import triage_severity
from domain.sla.waiting import WaitingObservation, promise
from domain.values import Actor, Category, Channel


def checked_line(policy: Policy, by: Actor, support_line: str | None) -> str | None:
    """The phone line a request came in on (§2): one of the policy's, and only by phone."""
    if support_line is None:
        return None
    if by.channel is not Channel.PHONE:
        raise SupportLineOnlyByPhone(
            f"Only a request opened by phone came in on a support line, not one opened "
            f"{by.channel.value}."
        )
    if support_line not in policy.support_lines:
        known = ", ".join(sorted(policy.support_lines)) or "none"
        raise SupportLineUnknown(
            f"{support_line!r} is not a support line of policy {policy.version} (its lines: "
            f"{known})."
        )
    return support_line


def recorded_facts(
    organisation: Organisation,
    policy: Policy,
    category: Category,
    at: datetime,
    waiting: Mapping[str, WaitingObservation] | None,
) -> dict[str, Any]:
    """The `Opened` fields the request does not give: the customer's locale (§7.3), the
    triage severity (§4, the strictest the policy allows it) and, given the SLA tracker's
    observations per severity, the first response promised on that severity's target (§2's
    expected waiting time; none without observations)."""
    triage = triage_severity(policy, category, organisation.agreement)
    estimate = None
    if waiting is not None:
        customer = CustomerLocale(timezone=organisation.timezone, country=organisation.country)
        estimate = promise(waiting, policy, category, triage, customer, at)
    return {
        "customer_timezone": organisation.timezone,
        "customer_country": organisation.country,
        "triage_severity": triage,
        "expected_response_at": estimate.expected_at if estimate else None,
        "waiting_estimate": estimate.details if estimate else None,
    }
