"""SLA clocks and their business-time deadlines: pure functions over a policy."""

from domain.policy.rules import triage_severity
from domain.sla.business_time import (
    CountedSpan,
    Deadline,
    DeadlineExplanation,
    DeadlineProof,
    NegativeDuration,
    deadline,
    elapsed,
    explain,
)
from domain.sla.clock import (
    Change,
    Clock,
    Metric,
    State,
    Transition,
    advance,
    finish,
    is_finished,
    last,
    recompute,
    start,
    time_left,
)
from domain.sla.targets import ResolvedTarget, follow_up_target, initial_response_target

__all__ = [
    "Change",
    "Clock",
    "CountedSpan",
    "Deadline",
    "DeadlineExplanation",
    "DeadlineProof",
    "Metric",
    "NegativeDuration",
    "ResolvedTarget",
    "State",
    "Transition",
    "advance",
    "deadline",
    "elapsed",
    "explain",
    "finish",
    "follow_up_target",
    "initial_response_target",
    "is_finished",
    "last",
    "recompute",
    "start",
    "time_left",
    "triage_severity",
]
