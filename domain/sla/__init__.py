"""The SLA clock: business-time deadlines and clock states, pure functions over a policy."""

from domain.sla.business_time import (
    CountedSpan,
    Deadline,
    DeadlineExplanation,
    NegativeDuration,
    deadline,
    elapsed,
    explain,
)
from domain.sla.clock import (
    ClockReading,
    ClockState,
    ResolvedTarget,
    follow_up_target,
    initial_response_target,
    read_clock,
)

__all__ = [
    "ClockReading",
    "ClockState",
    "CountedSpan",
    "Deadline",
    "DeadlineExplanation",
    "NegativeDuration",
    "ResolvedTarget",
    "deadline",
    "elapsed",
    "explain",
    "follow_up_target",
    "initial_response_target",
    "read_clock",
]
