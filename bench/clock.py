"""How a deadline's cost grows: with calendar days spanned, not with minutes.

Baselines measured in the same run:
- `holidays-loop`: the raw `holidays` library asked about each day of the same span
  (the least any day-aware deadline must do);
- `minute-steps`: walking the same span minute by minute (what a naive clock does).
Reported as ratios; absolute times on shared machines are only for orientation.

Run: make bench  (or: python bench/clock.py [--smoke])
--smoke: spans of 1, 7 and 30 days, one short batch per figure: checks the bench runs.
It needs no database, and runs as a script (not `-m bench.clock`), so it imports nothing
from bench/.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

from casebook.policy_source import load_policy
from domain.calendars import BusinessCalendar
from domain.sla import Deadline, deadline, elapsed, initial_response_target
from domain.values import Category, Severity

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Starts a week before the 2025 Spring Festival: every span crosses its holidays
# and the make-up working days around it.
START = datetime(2025, 1, 20, 10, tzinfo=SHANGHAI)
SPANS_IN_DAYS = (1, 30, 365)


@dataclass(frozen=True)
class Sizes:
    """How long to measure: the spans and, per figure, the batches and their time budget."""

    spans: tuple[int, int, int] = SPANS_IN_DAYS
    repeat: int = 7
    budget_s: float = 0.2
    naive_repeat: int = 3  # the minute walk is slow: fewer, longer batches
    naive_budget_s: float = 0.5


# Three spans still, so the per-day comparison (last vs middle span) is printed too.
SMOKE = Sizes(spans=(1, 7, 30), repeat=1, budget_s=0.01, naive_repeat=1, naive_budget_s=0.01)


def best_of(action: Callable[[], object], repeat: int = 7, budget_s: float = 0.2) -> float:
    """Median seconds per call over `repeat` batches sized to fill `budget_s`.

    Batches rather than single calls because one deadline takes microseconds, below what
    a single timer reading resolves well; the median, because the machines are shared.
    """
    calls = 1
    while True:
        began = time.perf_counter()
        for _ in range(calls):
            action()
        took = time.perf_counter() - began
        if took > budget_s / repeat or calls > 100_000:
            break
        calls *= 2
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(calls):
            action()
        samples.append((time.perf_counter() - began) / calls)
    return statistics.median(samples)


def holidays_loop(days: int) -> Callable[[], object]:
    """The baseline: the raw holidays library asked about each day of the span."""
    china = holidays.country_holidays("CN")
    first = START.date()

    def run() -> int:
        working = 0
        for offset in range(days + 1):
            if china.is_working_day(first + timedelta(days=offset)):
                working += 1
        return working

    return run


def minute_steps(calendar: BusinessCalendar, target: timedelta) -> Callable[[], object]:
    """What a naive clock does: walk the span minute by minute, counting business minutes."""
    minute = timedelta(minutes=1)

    def run() -> datetime:
        remaining, instant = target, START
        while remaining > timedelta(0):
            local = instant.astimezone(calendar.timezone)
            open_minute = local.hour * 60 + local.minute
            in_hours = calendar.opens_minute <= open_minute < calendar.closes_minute
            if in_hours and calendar.closed_reason(local.date()) is None:
                remaining -= minute
            instant += minute
        return instant

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="short spans and batches, for CI: checks the bench runs, measures nothing",
    )
    sizes = SMOKE if parser.parse_args().smoke else Sizes()
    policy = load_policy()
    calendar = initial_response_target(policy, Category.BILLING, Severity.B).calendar
    print(f"calendar {calendar.name}: Mon-Fri 09:00-18:00 Asia/Shanghai, CN holidays")
    smoke = "; SMOKE RUN: tiny sizes, figures mean nothing" if sizes is SMOKE else ""
    print(f"start {START.isoformat()} (Spring Festival 2025 inside every span){smoke}\n")
    header = (
        f"{'days':>5} {'business h':>10} {'deadline':>11} {'per day':>9} "
        f"{'holidays-loop':>14} {'ratio':>6} {'minute-steps':>13} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    per_day = []
    for days in sizes.spans:
        target = elapsed(START, START + timedelta(days=days), calendar)

        def ours_once(t: timedelta = target) -> Deadline:
            return deadline(START, t, calendar)

        ours = best_of(ours_once, sizes.repeat, sizes.budget_s)
        raw = best_of(holidays_loop(days), sizes.repeat, sizes.budget_s)
        naive = best_of(minute_steps(calendar, target), sizes.naive_repeat, sizes.naive_budget_s)
        per_day.append(ours / days)
        print(
            f"{days:>5} {target.total_seconds() / 3600:>10.0f} {ours * 1e6:>9.0f}us "
            f"{ours / days * 1e6:>7.1f}us {raw * 1e6:>12.0f}us {ours / raw:>6.2f} "
            f"{naive * 1e3:>11.1f}ms {naive / ours:>6.0f}x"
        )
    # Both targets fall due on the same business day: 538 minutes apart.
    fewer_minutes = best_of(
        lambda: deadline(START, timedelta(hours=180, minutes=1), calendar),
        sizes.repeat,
        sizes.budget_s,
    )
    same_days = best_of(
        lambda: deadline(START, timedelta(hours=188, minutes=59), calendar),
        sizes.repeat,
        sizes.budget_s,
    )
    middle, last = sizes.spans[1], sizes.spans[2]
    print(
        f"\ncost per spanned day, {last} vs {middle} days: {per_day[2] / per_day[1]:.2f}x "
        "(about 1 means linear in days)"
    )
    print(
        f"same days, 538 more minutes of target: {same_days / fewer_minutes:.2f}x "
        "(about 1 means minutes do not matter)"
    )


if __name__ == "__main__":
    main()
