"""Recorded deadlines re-proven, provisional ones listed and refreshed (docs/sla.md).

`verify` recomputes every clock's deadline and proof from its recorded inputs with the
policy versions and calendar data installed here and reports the clocks that differ.
`provisional` lists the open clocks whose deadline rests on an estimated holiday schedule;
`refresh` recomputes them (and the open clocks recorded before proofs) with the installed
data and, where a deadline moved, records
the recomputation and its SLA event in the same transaction as any other transition
(`store.save_transitions`: the case's outbox lock and sequence).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.sla.clock import Clock, Metric, Transition
from domain.sla.proof import differences, refresh
from domain.sla.targets import ResolvedTarget
from projections.sla import store
from projections.sla.cases import CaseView
from projections.sla.targets import Locale, TargetBook

_K = ", ".join(f"k.{column.strip()}" for column in store.CLOCK_COLUMNS.split(","))
_WITH_CASE = (
    f"SELECT {_K}, k.category AS case_category, "
    "COALESCE(c.customer_timezone, o.timezone) AS zone, "
    "COALESCE(c.customer_country, o.country) AS country "
    "FROM casebook_sla_clocks k JOIN casebook_sla_cases c USING (case_id) "
    "LEFT JOIN casebook_sla_organisations o ON o.organisation_id = c.organisation_id "
)
_OPEN = "k.state NOT IN ('met', 'stopped') AND k.stopped_at IS NULL AND k.deadline IS NOT NULL"


class CaseNotTracked(LookupError):
    """The SLA tracker has no row for the case asked about."""


@dataclass(frozen=True)
class ClockDifference:
    """One clock whose record and recomputation part, and how."""

    case_id: str
    metric: Metric
    differences: list[str]


@dataclass
class Verification:
    """What `verify` found: clocks checked, those recorded without a proof (checked on
    their deadline alone), and every clock that differs."""

    clocks: int = 0
    unproven: int = 0
    differing: list[ClockDifference] = field(default_factory=list)


@dataclass(frozen=True)
class ProvisionalClock:
    """An open clock whose deadline rests on an estimated holiday schedule."""

    case_id: str
    metric: Metric
    state: str
    deadline: datetime
    years: list[int] | None  # None: recorded before proofs named the years


@dataclass(frozen=True)
class Moved:
    """A provisional deadline that the installed calendar data moved."""

    case_id: str
    metric: Metric
    before: datetime
    after: datetime


@dataclass
class Refresh:
    """What `refresh` did: deadlines moved (each with its SLA event), clocks whose proof
    alone was renewed, and clocks that stood as recorded."""

    moved: list[Moved] = field(default_factory=list)
    reproven: int = 0
    unchanged: int = 0


def verify(
    conn: psycopg.Connection[Any],
    targets: TargetBook,
    case_id: str | None = None,
    progress: Callable[[int], None] | None = None,
    every: int = 5000,
) -> Verification:
    """Re-prove the clocks of `case_id` (every clock when None); `progress` hears the
    count every `every` clocks."""
    if case_id is not None and not _tracked(conn, case_id):
        raise CaseNotTracked(f"case {case_id} is not tracked by the SLA tracker")
    found = Verification()
    for clock, category, locale in _clocks(conn, case_id):
        found.clocks += 1
        found.unproven += clock.deadline is not None and clock.proof is None
        problems = _differences(targets, clock, category, locale)
        if problems:
            found.differing.append(ClockDifference(clock.case_id, clock.metric, problems))
        if progress is not None and found.clocks % every == 0:
            progress(found.clocks)
    return found


def provisional(conn: psycopg.Connection[Any]) -> list[ProvisionalClock]:
    """The open provisional clocks, nearest deadline first."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            "SELECT k.case_id, k.metric, k.state, k.deadline, k.proof->'provisional_years' "
            f"AS years FROM casebook_sla_clocks k WHERE k.provisional AND {_OPEN} "
            "ORDER BY k.deadline, k.case_id, k.metric"
        ).fetchall()
    return [
        ProvisionalClock(
            str(r["case_id"]), Metric(r["metric"]), r["state"], r["deadline"], r["years"]
        )
        for r in rows
    ]


def refresh_provisional(
    conn: psycopg.Connection[Any], targets: TargetBook, now: datetime, batch: int = 200
) -> Refresh:
    """Recompute the open provisional clocks at `now` with the installed calendar data,
    and the open clocks recorded before proofs (which records their proof, and flags
    those that are provisional), `batch` cases per transaction (committed on `conn`)."""
    done = Refresh()
    rows = conn.execute(
        f"SELECT DISTINCT k.case_id::text FROM casebook_sla_clocks k WHERE {_OPEN} "
        "AND (k.provisional OR k.proof IS NULL) ORDER BY 1"
    ).fetchall()
    cases = [case_id for (case_id,) in rows]
    conn.commit()
    for first in range(0, len(cases), batch):
        with conn.transaction():
            _refresh_cases(conn, targets, now, cases[first : first + batch], done)
    return done


def _refresh_cases(
    conn: psycopg.Connection[Any],
    targets: TargetBook,
    now: datetime,
    case_ids: Sequence[str],
    done: Refresh,
) -> None:
    views = store.load_views(conn, case_ids)  # locked, as a consumer batch locks them
    locales = store.load_locales(conn, {view.organisation_id for view in views.values()})
    changed: list[CaseView] = []
    transitions: list[Transition] = []
    for view in views.values():
        locale = view.locale or locales.get(view.organisation_id)
        touched = False
        for metric, clock in list(view.clocks.items()):
            if clock.is_finished or clock.deadline is None:
                continue  # finished since it was listed
            if not clock.provisional and clock.proof is not None:
                continue
            try:
                target = _target(targets, clock, view.category, locale)
            except LookupError:  # its policy version is not known here: leave it be
                target = None
            result = refresh(clock, target, now) if target is not None else None
            if result is None:
                done.unchanged += 1
                continue
            view.clocks[metric], touched = result.clock, True
            transitions.extend(result.transitions)
            if result.transitions:
                after = result.clock.deadline
                assert after is not None
                done.moved.append(Moved(view.case_id, metric, clock.deadline, after))
            else:
                done.reproven += 1
        if touched:
            changed.append(view)
    store.save_views(conn, changed)
    with conn.cursor() as cursor:
        store.save_transitions(
            cursor, transitions, {v.case_id: (v.organisation_id, v.category) for v in changed}
        )


def _differences(
    targets: TargetBook, clock: Clock, category: str, locale: Locale | None
) -> list[str]:
    if clock.deadline is None:
        return []  # waiting for the customer's locale: no deadline was set
    try:
        target = _target(targets, clock, category, locale)
    except LookupError as error:  # unknown policy version, or the customer's locale
        return [f"cannot recompute: {error}"]
    if target is None:
        return [f"policy {clock.policy_version} sets no {clock.metric.value} target"]
    return differences(clock, target)


def _target(
    targets: TargetBook, clock: Clock, category: str, locale: Locale | None
) -> ResolvedTarget | None:
    """The clock's target under its own policy version, with the installed calendar data."""
    resolve = targets.initial if clock.metric is Metric.INITIAL_RESPONSE else targets.follow_up
    return resolve(clock.policy_version, category, clock.severity, locale)


def _tracked(conn: psycopg.Connection[Any], case_id: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM casebook_sla_cases WHERE case_id = %s::uuid", (case_id,)
    ).fetchone()
    return found is not None


def _clocks(
    conn: psycopg.Connection[Any], case_id: str | None
) -> Iterator[tuple[Clock, str, Locale | None]]:
    """Every clock (of `case_id`) with its case's category and customer locale, streamed."""
    where, params = ("WHERE k.case_id = %s::uuid ", (case_id,)) if case_id else ("", ())
    with conn.cursor("casebook_sla_verify") as cursor:
        cursor.itersize = 2000
        cursor.execute(f"{_WITH_CASE}{where}ORDER BY k.case_id, k.metric", params)
        for row in cursor:
            *clock, category, zone, country = row
            locale = Locale(zone, country) if zone and country else None
            yield store.clock_from_row(clock), category, locale
