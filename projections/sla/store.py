"""The SLA tracker's tables: load case views, save them with their transitions and outbox.

All writes happen in the caller's transaction, so a batch's views, its history rows and
its outbox rows commit together with the consumer's offsets, or not at all.

It stays one module because every write to the SLA tables and their outbox happens in
one transaction, and the invariants between those tables are easier to keep when they
sit in one file.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from domain.sla.clock import Clock, Metric, State, Transition
from projections.sla.cases import CaseView
from projections.sla.events import Proof, outbox_row
from projections.sla.targets import Locale

_T = TypeVar("_T")

_CASE_COLUMNS = (
    "case_id, organisation_id, category, severity, status, agent_id, opened_at, "
    "first_response_at, resolved_at, unresponsive_since, version, customer_timezone, "
    "customer_country, closure_reason, out_of_scope, "  # closure: migration 0015
    "promised_response_at, first_response_business_seconds, "  # migration 0017
    "satisfaction_score, satisfaction_at, "  # migration 0023
    "incident_id"  # migration 0022
)
CLOCK_COLUMNS = (
    "case_id, metric, severity, policy_version, started_at, target_seconds, calendar, "
    "description, deadline, at_risk_at, provisional, state, met_at, breached_at, stopped_at, "
    "transitions, assessed, proof"  # assessed: migration 0016, proof: 0018
)


def load_views(
    conn: psycopg.Connection[Any], case_ids: Iterable[str], *, lock: bool = True
) -> dict[str, CaseView]:
    """The stored views of `case_ids` with their clocks, locked for this transaction."""
    wanted = sorted(set(case_ids))
    if not wanted:
        return {}
    # Sorted locks: two writers taking overlapping sets never deadlock.
    suffix = " ORDER BY case_id FOR UPDATE" if lock else ""
    rows = conn.execute(
        f"SELECT {_CASE_COLUMNS} FROM casebook_sla_cases WHERE case_id = ANY(%s::uuid[]){suffix}",
        (wanted,),
    ).fetchall()
    return _with_clocks(conn, rows, lock=lock)


def load_open_views_of(
    conn: psycopg.Connection[Any], organisation_id: str, known: Mapping[str, CaseView]
) -> dict[str, CaseView]:
    """The unresolved cases of an organisation not already in `known`, locked."""
    rows = conn.execute(
        f"SELECT {_CASE_COLUMNS} FROM casebook_sla_cases WHERE organisation_id = %s "
        "AND status <> 'resolved' ORDER BY case_id FOR UPDATE",
        (organisation_id,),
    ).fetchall()
    return _with_clocks(conn, [row for row in rows if str(row[0]) not in known], lock=True)


def _with_clocks(
    conn: psycopg.Connection[Any], rows: Sequence[Any], *, lock: bool
) -> dict[str, CaseView]:
    # Locked clocks: the timer takes due clocks FOR UPDATE SKIP LOCKED, so while a batch
    # holds them the timer passes them by, and a tick committed meanwhile cannot be
    # overwritten by the batch's older copy (the batch waits for it, then reads it).
    suffix = " ORDER BY case_id, metric FOR UPDATE" if lock else ""
    views = {str(row[0]): _view(row) for row in rows}
    if views:
        for row in conn.execute(
            f"SELECT {CLOCK_COLUMNS} FROM casebook_sla_clocks"
            f" WHERE case_id = ANY(%s::uuid[]){suffix}",
            (list(views),),
        ):
            clock = clock_from_row(row)
            views[clock.case_id].clocks[clock.metric] = clock
    return views


def _view(row: Any) -> CaseView:
    return CaseView(
        case_id=str(row[0]),
        organisation_id=str(row[1]),
        category=row[2],
        severity=row[3],
        status=row[4],
        agent_id=row[5],
        opened_at=row[6],
        first_response_at=row[7],
        resolved_at=row[8],
        unresponsive_since=row[9],
        version=row[10],
        locale=Locale(timezone=row[11], country=row[12]) if row[11] and row[12] else None,
        closure_reason=row[13],
        out_of_scope=row[14],
        promised_response_at=row[15],
        first_response_business_seconds=row[16],
        satisfaction_score=row[17],
        satisfaction_at=row[18],
        incident_id=str(row[19]) if row[19] is not None else None,
    )


def clock_from_row(row: Sequence[Any]) -> Clock:
    return Clock(
        case_id=str(row[0]),
        metric=Metric(row[1]),
        severity=row[2],
        policy_version=row[3],
        started_at=row[4],
        target=timedelta(seconds=row[5]),
        calendar=row[6],
        description=row[7],
        deadline=row[8],
        at_risk_at=row[9],
        provisional=row[10],
        state=State(row[11]),
        met_at=row[12],
        breached_at=row[13],
        stopped_at=row[14],
        transitions=row[15],
        assessed=row[16],
        proof=Proof.model_validate(row[17]).to_domain() if row[17] is not None else None,
    )


def load_locales(
    conn: psycopg.Connection[Any], organisation_ids: Iterable[str]
) -> dict[str, Locale]:
    wanted = sorted(set(organisation_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT organisation_id, timezone, country FROM casebook_sla_organisations "
        "WHERE organisation_id = ANY(%s::uuid[])",
        (wanted,),
    ).fetchall()
    return {str(org): Locale(timezone=zone, country=country) for org, zone, country in rows}


def save_locale(conn: psycopg.Connection[Any], organisation_id: str, locale: Locale) -> None:
    conn.execute(
        "INSERT INTO casebook_sla_organisations (organisation_id, timezone, country) "
        "VALUES (%s, %s, %s) "
        "ON CONFLICT (organisation_id) DO UPDATE "
        "SET timezone = EXCLUDED.timezone, country = EXCLUDED.country",
        (organisation_id, locale.timezone, locale.country),
    )


def save_views(conn: psycopg.Connection[Any], views: Iterable[CaseView]) -> None:
    """Upsert the views and their clocks."""
    views = list(_last_per_key(views, lambda v: v.case_id))
    if not views:
        return
    with conn.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO casebook_sla_cases ({_CASE_COLUMNS}, due_at) "
            f"SELECT * FROM {_unnest(_CASE_TYPES)} "
            "ON CONFLICT (case_id) DO UPDATE SET severity = EXCLUDED.severity, "
            "status = EXCLUDED.status, agent_id = EXCLUDED.agent_id, "
            "first_response_at = EXCLUDED.first_response_at, "
            "resolved_at = EXCLUDED.resolved_at, "
            "unresponsive_since = EXCLUDED.unresponsive_since, "
            "version = EXCLUDED.version, due_at = EXCLUDED.due_at, "
            "closure_reason = EXCLUDED.closure_reason, out_of_scope = EXCLUDED.out_of_scope, "
            "promised_response_at = EXCLUDED.promised_response_at, "
            "first_response_business_seconds = EXCLUDED.first_response_business_seconds, "
            "satisfaction_score = EXCLUDED.satisfaction_score, "
            "satisfaction_at = EXCLUDED.satisfaction_at, "
            "incident_id = EXCLUDED.incident_id",
            _columns(
                [
                    (
                        v.case_id,
                        v.organisation_id,
                        v.category,
                        v.severity,
                        v.status,
                        v.agent_id,
                        v.opened_at,
                        v.first_response_at,
                        v.resolved_at,
                        v.unresponsive_since,
                        v.version,
                        v.locale.timezone if v.locale else None,
                        v.locale.country if v.locale else None,
                        v.closure_reason,
                        v.out_of_scope,
                        v.promised_response_at,
                        v.first_response_business_seconds,
                        v.satisfaction_score,
                        v.satisfaction_at,
                        v.incident_id,
                        v.due_at,
                    )
                    for v in views
                ],
                len(_CASE_TYPES),
            ),
        )
        save_clocks(cursor, [(clock, v.category) for v in views for clock in v.clocks.values()])


def save_clocks(cursor: psycopg.Cursor[Any], clocks: Sequence[tuple[Clock, str]]) -> None:
    """Upsert clocks (each with its case's category, which the compliance report groups by)."""
    clocks = list(_last_per_key(clocks, lambda pair: (pair[0].case_id, pair[0].metric)))
    if not clocks:
        return
    cursor.execute(
        f"INSERT INTO casebook_sla_clocks ({CLOCK_COLUMNS}, category, next_due_at) "
        f"SELECT * FROM {_unnest(_CLOCK_TYPES)} "
        "ON CONFLICT (case_id, metric) DO UPDATE SET severity = EXCLUDED.severity, "
        "policy_version = EXCLUDED.policy_version, started_at = EXCLUDED.started_at, "
        "target_seconds = EXCLUDED.target_seconds, calendar = EXCLUDED.calendar, "
        "description = EXCLUDED.description, deadline = EXCLUDED.deadline, "
        "at_risk_at = EXCLUDED.at_risk_at, provisional = EXCLUDED.provisional, "
        "state = EXCLUDED.state, met_at = EXCLUDED.met_at, breached_at = EXCLUDED.breached_at, "
        "stopped_at = EXCLUDED.stopped_at, transitions = EXCLUDED.transitions, "
        "assessed = EXCLUDED.assessed, proof = EXCLUDED.proof, "
        "next_due_at = EXCLUDED.next_due_at",
        _columns(
            [
                (
                    c.case_id,
                    c.metric.value,
                    c.severity,
                    c.policy_version,
                    c.started_at,
                    c.target.total_seconds(),
                    c.calendar,
                    c.description,
                    c.deadline,
                    c.at_risk_at,
                    c.provisional,
                    c.state.value,
                    c.met_at,
                    c.breached_at,
                    c.stopped_at,
                    c.transitions,
                    c.assessed,
                    _proof(c),
                    category,
                    c.next_due_at,
                )
                for c, category in clocks
            ],
            len(_CLOCK_TYPES),
        ),
    )


def _proof(clock: Clock) -> Jsonb | None:
    if clock.proof is None:
        return None
    return Jsonb(Proof.of(clock.proof).model_dump(mode="json"))


def save_transitions(
    cursor: psycopg.Cursor[Any],
    transitions: Sequence[Transition],
    cases: Mapping[str, tuple[str, str]],
) -> None:
    """History rows and outbox rows; `cases` maps case id to (organisation, category).

    Both are keyed by the transition's stable id: a transition recorded twice (a batch
    applied again after a crash before its offsets were stored cannot happen, but a
    replayed dead letter might overlap) is kept once and published once.
    """
    if not transitions:
        return
    cursor.execute(
        "INSERT INTO casebook_sla_clock_history (event_id, case_id, metric, change, at, reason, "
        "state, severity, policy_version, deadline, at_risk_at) "
        f"SELECT * FROM {_unnest(_HISTORY_TYPES)} ON CONFLICT DO NOTHING",
        _columns(
            [
                (
                    t.event_id,
                    t.clock.case_id,
                    t.clock.metric.value,
                    t.change.value,
                    t.at,
                    t.reason,
                    t.clock.state.value,
                    t.clock.severity,
                    t.clock.policy_version,
                    t.clock.deadline,
                    t.clock.at_risk_at,
                )
                for t in transitions
            ],
            len(_HISTORY_TYPES),
        ),
    )
    rows = [outbox_row(t, *cases[t.clock.case_id]) for t in transitions]
    lock_outbox_subjects(cursor, sorted({row[2] for row in rows}))
    # In the transitions' order: the outbox publishes by id, so one clock's events keep
    # theirs, and each case's sequence goes on from its last row in that same order. Rows
    # already there (a replayed dead letter overlapping) are left out before numbering.
    cursor.execute(
        "INSERT INTO casebook_sla_outbox (event_id, type, subject, time, payload, sequence) "
        "SELECT e, t, s, w, p::jsonb, coalesce((SELECT max(o.sequence) FROM "
        "casebook_sla_outbox o WHERE o.subject = f.s), 0) "
        "+ row_number() OVER (PARTITION BY s ORDER BY n) "
        "FROM (SELECT DISTINCT ON (e) * FROM unnest(%b::text[], %b::text[], %b::text[], "
        "%b::timestamptz[], %b::text[]) WITH ORDINALITY AS u(e, t, s, w, p, n) "
        "WHERE NOT EXISTS (SELECT 1 FROM casebook_sla_outbox o WHERE o.event_id = u.e) "
        "ORDER BY e, n) AS f ORDER BY n",
        _columns(rows, 5),
    )


# Every writer of the SLA outbox (this module and the timer's statement, due.py) takes
# these locks, in one order (by hash, which collisions cannot reorder), in a statement of
# its own before the one that numbers: that statement then sees every row of the case, and
# no other writer can number one of them until this transaction ends. The schema is part
# of the key, so a rebuild numbering its own outbox never waits for the live writers.
LOCK_OUTBOX_SUBJECTS = (
    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.casebook_sla_outbox'), h) "
    "FROM (SELECT DISTINCT hashtext(s) AS h FROM unnest(%s::text[]) AS s ORDER BY h) AS k"
)


def lock_outbox_subjects(cursor: psycopg.Cursor[Any], subjects: Sequence[str]) -> None:
    """Hold the right to number the SLA outbox rows of `subjects` until commit."""
    if subjects:
        cursor.execute(LOCK_OUTBOX_SUBJECTS, (list(subjects),))


# One statement per table and batch: the rows travel as one array per column (unnest),
# which costs one round trip and one plan instead of one per row; binary (%b), because
# the text form of an array escapes every element with a regular expression.
_CASE_TYPES = (
    "uuid", "uuid", "text", "text", "text", "text", "timestamptz", "timestamptz",
    "timestamptz", "timestamptz", "integer", "text", "text", "text", "boolean",
    "timestamptz", "double precision", "smallint", "timestamptz", "uuid", "timestamptz",
)  # fmt: skip
_CLOCK_TYPES = (
    "uuid", "text", "text", "text", "timestamptz", "double precision", "text", "text",
    "timestamptz", "timestamptz", "boolean", "text", "timestamptz", "timestamptz",
    "timestamptz", "integer", "boolean", "jsonb", "text", "timestamptz",
)  # fmt: skip
_HISTORY_TYPES = (
    "text", "uuid", "text", "text", "timestamptz", "text", "text", "text", "text",
    "timestamptz", "timestamptz",
)  # fmt: skip


def _unnest(types: Sequence[str]) -> str:
    return "unnest(" + ", ".join(f"%b::{t}[]" for t in types) + ")"


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column."""
    return [[row[i] for row in rows] for i in range(width)]


def _last_per_key(items: Iterable[_T], key: Callable[[_T], Hashable]) -> Iterable[_T]:
    """One item per key, the last (what row-by-row upserts would have left), in key order of
    first appearance: one statement may not upsert the same row twice."""
    kept: dict[Hashable, _T] = {}
    for item in items:
        kept[key(item)] = item
    return kept.values()
