"""Summary figures shared by the benches, so that every bench reports p50/p99 the same way."""

from __future__ import annotations


def percentile(samples: list[float], share: float) -> float:
    """The sample at `share` (0.5 for p50) of the sorted samples: nearest rank, no interpolation.

    Nearest rank keeps p99 a latency that was actually observed, which is what a reader
    compares with a target; with fewer than 100 samples p99 is simply the largest.
    """
    if not samples:
        raise ValueError("no samples to take a percentile of")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
