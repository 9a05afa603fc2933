"""The support policy as versioned, validated data."""

from domain.policy.loader import PolicyError, parse_policy
from domain.policy.model import ClosureReasonSpec, CustomerLocale, DurationSpec, Policy, TargetSpec

__all__ = [
    "ClosureReasonSpec",
    "CustomerLocale",
    "DurationSpec",
    "Policy",
    "PolicyError",
    "TargetSpec",
    "parse_policy",
]
