"""Value types shared by every aggregate: categories, severities, channels, actors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    """Kinds of support from policy §3."""

    TECHNICAL = "technical"
    BILLING = "billing"
    PRESALES = "presales"


class Severity(StrEnum):
    """Severity levels from policy §4; A is the most severe."""

    A = "A"
    B = "B"
    C = "C"

    @property
    def rank(self) -> int:
        """Higher rank means more severe (A=3, B=2, C=1)."""
        return {"A": 3, "B": 2, "C": 1}[self.value]

    def is_more_severe_than(self, other: Severity) -> bool:
        """True when this severity is strictly more severe than `other`."""
        return self.rank > other.rank


class ClosureReason(StrEnum):
    """Why a case was resolved; the policy file labels each and says which are out of
    scope (§3: the customer's own network, third-party services or add-ins)."""

    FIXED = "fixed"
    WORKAROUND = "workaround"
    OUT_OF_SCOPE_CUSTOMER_NETWORK = "out_of_scope_customer_network"
    OUT_OF_SCOPE_THIRD_PARTY = "out_of_scope_third_party"
    DUPLICATE = "duplicate"
    CUSTOMER_WITHDREW = "customer_withdrew"
    NO_RESPONSE = "no_response"


class Channel(StrEnum):
    """How an action reached casebook."""

    ONLINE = "online"
    PHONE = "phone"
    API = "api"


class Role(StrEnum):
    """Who a principal is, as far as the domain rules care."""

    CUSTOMER_ADMIN = "customer_admin"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ANALYST = "analyst"
    ADMIN = "admin"
    SYSTEM = "system"
    # The customer portal's system key: it acts for one customer admin per request, and
    # the commands it sends are that admin's (CUSTOMER_ADMIN, online).
    PORTAL = "portal"


class Agreement(StrEnum):
    """The organisation's support agreement; A needs the advanced one (§4)."""

    STANDARD = "standard"
    ADVANCED = "advanced"


class ContactKind(StrEnum):
    """How to reach a customer: a registered contact, or the preferred method (§2)."""

    PHONE = "phone"
    EMAIL = "email"


@dataclass(frozen=True)
class Actor:
    """Who performed an action and through which channel.

    Carried by every event so the audit trail never has to guess.
    """

    principal_id: str
    role: Role
    channel: Channel

    def __post_init__(self) -> None:
        if not self.principal_id:
            raise ValueError("principal_id must not be empty")
        # Events decoded from JSON give plain strings; normalise so state is typed.
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "channel", Channel(self.channel))

    @property
    def is_support_staff(self) -> bool:
        """Agents and supervisors work cases on the provider's side."""
        return self.role in (Role.AGENT, Role.SUPERVISOR)


# What a personal field reads as once its data key was destroyed (crypto-shredding,
# docs/privacy.md): the value is gone for good, the event and its other fields stay.
ERASED = "[erased]"
