"""What the API reads from the SLA tracker: the agent queue, a case's clocks, compliance.

Stored states are what the timer last marked (at most a tick old); remaining business
time is computed at read time on the clock's own calendar.

It stays one module because the queue, a case's clocks and the compliance report share
the row mapping and the cursor code over the same tables.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import tuple_row

from domain.calendars.calendar import BusinessCalendar
from domain.cases.events import UNSPECIFIED_REASON
from domain.sla.business_time import DeadlineExplanation, DeadlineProof, explain
from domain.sla.clock import Metric, State, is_finished, time_left
from projections.sla.events import Proof
from projections.sla.targets import Locale, TargetBook

Period = Literal["day", "week", "month"]


@dataclass(frozen=True)
class ClockStatus:
    """One clock as a reader sees it now."""

    metric: Metric
    state: State
    severity: str
    policy_version: str
    description: str
    calendar: str
    started_at: datetime
    target: timedelta
    deadline: datetime | None
    at_risk_at: datetime | None
    provisional: bool
    met_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    # Business time left before the deadline; negative once overdue; None if finished.
    remaining: timedelta | None
    explanation: DeadlineExplanation | None = None
    # True: the explanation is the proof recorded with the deadline; False: recomputed
    # now with the installed calendar data (a clock recorded before proofs were).
    explanation_recorded: bool = False
    # The policy version the recorded proof names (None when recomputed).
    proof_policy_version: str | None = None
    # False: a triage clock, the case awaits its assessment (docs/sla.md).
    assessed: bool = True


@dataclass(frozen=True)
class QueueEntry:
    case_id: str
    organisation_id: str
    category: str
    severity: str | None
    status: str
    agent_id: str | None
    opened_at: datetime
    unresponsive_since: datetime | None
    due_at: datetime | None
    clock: ClockStatus | None
    incident_id: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    metric: Metric
    change: str
    at: datetime
    reason: str
    state: State
    severity: str
    policy_version: str
    deadline: datetime | None


@dataclass(frozen=True)
class CaseSla:
    case_id: str
    organisation_id: str
    category: str
    severity: str | None
    status: str
    clocks: list[ClockStatus]
    history: list[HistoryEntry]


@dataclass
class Tally:
    """Decided targets of in-scope cases, and those of cases closed out of scope (§3)."""

    met: int = 0
    breached: int = 0
    out_of_scope: int = 0  # neither met nor breached: the case was outside support's scope

    @property
    def total(self) -> int:
        return self.met + self.breached

    @property
    def met_rate(self) -> float | None:
        return self.met / self.total if self.total else None


@dataclass(frozen=True)
class Promises:
    """First responses in the range of cases promised one at opening, against the promise."""

    promised: int = 0
    kept: int = 0  # the first response came at or before the promised instant
    # Median of first response minus promise, in seconds (negative: earlier than promised).
    median_error_seconds: float | None = None

    @property
    def kept_rate(self) -> float | None:
        return self.kept / self.promised if self.promised else None


@dataclass
class ComplianceReport:
    metric: Metric
    period: Period
    since: datetime
    until: datetime
    overall: Tally = field(default_factory=Tally)
    by_severity: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_category: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_period: dict[datetime, Tally] = field(default_factory=lambda: defaultdict(Tally))
    groups: dict[tuple[datetime, str, str], Tally] = field(
        default_factory=lambda: defaultdict(Tally)
    )
    # Cases whose current resolution fell in [since, until), per closure reason, and how
    # many of them the policy counts out of scope.
    closures: dict[str, int] = field(default_factory=dict)
    closures_out_of_scope: int = 0
    # The expected waiting time promised at opening against the first response, overall
    # and per period of the first response (docs/sla.md).
    promises: Promises = field(default_factory=Promises)
    promises_by_period: dict[datetime, Promises] = field(default_factory=dict)
    # Cases opened in [since, until) per service incident they are linked to.
    cases_by_incident: dict[str, int] = field(default_factory=dict)


class SlaReader:
    """Reads over the tracker's tables; calendars come from the target book."""

    def __init__(self, targets: TargetBook) -> None:
        self._targets = targets

    def queue(
        self,
        conn: psycopg.Connection[Any],
        now: datetime,
        *,
        severity: str | None = None,
        category: str | None = None,
        agent: str | None = None,
        after: tuple[datetime | None, str] | None = None,
        limit: int = 50,
    ) -> list[QueueEntry]:
        """Unresolved cases, nearest deadline first (cases with none last), one page; an
        unassessed case by its triage clock's deadline like any other."""
        where = ["c.status <> 'resolved'"]
        params: list[Any] = []
        for column, value in (("severity", severity), ("category", category)):
            if value is not None:
                where.append(f"c.{column} = %s")
                params.append(value)
        if agent is not None:
            where.append("c.agent_id = %s")
            params.append(agent)
        if after is not None:
            due, case_id = after
            if due is None:
                where.append("(c.due_at IS NULL AND c.case_id > %s::uuid)")
                params.append(case_id)
            else:
                where.append(
                    "(c.due_at > %s OR (c.due_at = %s AND c.case_id > %s::uuid) "
                    "OR c.due_at IS NULL)"
                )
                params.extend([due, due, case_id])
        params.append(limit)
        query = (
            f"SELECT {_CASE}, {_CLOCK}, {_LOCALE} FROM casebook_sla_cases c "
            "LEFT JOIN LATERAL (SELECT * FROM casebook_sla_clocks k WHERE k.case_id = c.case_id "
            "AND k.deadline = c.due_at ORDER BY k.metric LIMIT 1) k ON true "
            "LEFT JOIN casebook_sla_organisations o ON o.organisation_id = c.organisation_id "
            f"WHERE {' AND '.join(where)} ORDER BY c.due_at NULLS LAST, c.case_id LIMIT %s"
        )
        with conn.cursor(row_factory=tuple_row) as cursor:
            rows = cursor.execute(query, params).fetchall()
        return [self._entry(row, now) for row in rows]

    def case(self, conn: psycopg.Connection[Any], case_id: str, now: datetime) -> CaseSla | None:
        """A case's clocks with their explanations and every transition, or None."""
        with conn.cursor(row_factory=tuple_row) as cursor:
            found = cursor.execute(
                "SELECT c.case_id, c.organisation_id, c.category, c.severity, c.status, "
                f"{_LOCALE} FROM casebook_sla_cases c "
                "LEFT JOIN casebook_sla_organisations o USING (organisation_id) "
                "WHERE c.case_id = %s",
                (case_id,),
            ).fetchone()
            if found is None:
                return None
            locale = Locale(found[5], found[6]) if found[5] else None
            clocks = cursor.execute(
                f"SELECT {_CLOCK}, k.proof FROM casebook_sla_clocks k WHERE k.case_id = %s "
                "ORDER BY k.metric",
                (case_id,),
            ).fetchall()
            history = cursor.execute(
                "SELECT metric, change, at, reason, state, severity, policy_version, deadline "
                "FROM casebook_sla_clock_history WHERE case_id = %s ORDER BY at, event_id",
                (case_id,),
            ).fetchall()
        return CaseSla(
            case_id=str(found[0]),
            organisation_id=str(found[1]),
            category=found[2],
            severity=found[3],
            status=found[4],
            clocks=[
                self._clock(
                    row[:-1], found[2], locale, now, with_explanation=True, proof=_proof(row[-1])
                )
                for row in clocks
            ],
            history=[
                HistoryEntry(Metric(r[0]), r[1], r[2], r[3], State(r[4]), r[5], r[6], r[7])
                for r in history
            ],
        )

    def compliance(
        self,
        conn: psycopg.Connection[Any],
        *,
        since: datetime,
        until: datetime,
        period: Period,
        metric: Metric = Metric.INITIAL_RESPONSE,
    ) -> ComplianceReport:
        """Met and breached clocks whose outcome fell in [since, until), grouped; those of
        cases closed out of scope counted apart; closures in the range by reason."""
        with conn.cursor(row_factory=tuple_row) as cursor:
            rows = cursor.execute(
                "SELECT date_trunc(%s, COALESCE(k.met_at, k.breached_at), 'UTC') AS period, "
                "k.severity, k.category, "
                "count(*) FILTER (WHERE k.state = 'met' AND NOT c.out_of_scope), "
                "count(*) FILTER (WHERE k.state = 'breached' AND NOT c.out_of_scope), "
                "count(*) FILTER (WHERE c.out_of_scope) "
                "FROM casebook_sla_clocks k JOIN casebook_sla_cases c USING (case_id) "
                "WHERE k.metric = %s AND k.state IN ('met', 'breached') "
                "AND COALESCE(k.met_at, k.breached_at) >= %s "
                "AND COALESCE(k.met_at, k.breached_at) < %s "
                "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                (period, metric.value, since, until),
            ).fetchall()
            closures = cursor.execute(
                "SELECT closure_reason, out_of_scope, count(*) FROM casebook_sla_cases "
                "WHERE status = 'resolved' AND resolved_at >= %s AND resolved_at < %s "
                "GROUP BY 1, 2 ORDER BY 1, 2",
                (since, until),
            ).fetchall()
            linked = cursor.execute(
                "SELECT incident_id, count(*) FROM casebook_sla_cases WHERE incident_id IS NOT "
                "NULL AND opened_at >= %s AND opened_at < %s GROUP BY 1 ORDER BY 1",
                (since, until),
            ).fetchall()
            promises = cursor.execute(_PROMISES, (period, since, until)).fetchall()
        report = ComplianceReport(metric=metric, period=period, since=since, until=until)
        for bucket, promised, kept, error in promises:
            figures = Promises(promised, kept, error)
            if bucket is None:
                report.promises = figures
            else:
                report.promises_by_period[bucket] = figures
        report.cases_by_incident = {str(incident): count for incident, count in linked}
        for reason, out_of_scope, count in closures:
            reason = reason or UNSPECIFIED_REASON
            report.closures[reason] = report.closures.get(reason, 0) + count
            report.closures_out_of_scope += count if out_of_scope else 0
        for bucket, severity, category, met, breached, out_of_scope in rows:
            for tally in (
                report.overall,
                report.by_severity[severity],
                report.by_category[category],
                report.by_period[bucket],
                report.groups[(bucket, severity, category)],
            ):
                tally.met += met
                tally.breached += breached
                tally.out_of_scope += out_of_scope
        return report

    # --- rows ---------------------------------------------------------------------------

    def _entry(self, row: Any, now: datetime) -> QueueEntry:
        case, clock, (zone, country) = row[:_CASE_N], row[_CASE_N:-2], row[-2:]
        locale = Locale(zone, country) if zone else None
        return QueueEntry(
            case_id=str(case[0]),
            organisation_id=str(case[1]),
            category=case[2],
            severity=case[3],
            status=case[4],
            agent_id=case[5],
            opened_at=case[6],
            unresponsive_since=case[7],
            due_at=case[8],
            incident_id=str(case[9]) if case[9] is not None else None,
            clock=self._clock(clock, case[2], locale, now) if clock[0] is not None else None,
        )

    def _clock(
        self,
        row: Any,
        category: str,
        locale: Locale | None,
        now: datetime,
        *,
        with_explanation: bool = False,
        proof: DeadlineProof | None = None,
    ) -> ClockStatus:
        """The clock as it stands at `now`; its explanation (if asked) the recorded proof,
        or for a clock recorded before proofs, recomputed with the installed data."""
        (metric, state, severity, version, description, calendar_name, started_at,
         target_seconds, deadline, at_risk_at, provisional, met_at, breached_at,
         stopped_at, assessed) = row  # fmt: skip
        target = timedelta(seconds=target_seconds)
        calendar = self._calendar(version, category, severity, locale)
        remaining = None
        open_clock = not is_finished(State(state), stopped_at)
        if open_clock and deadline is not None and calendar is not None:
            remaining = time_left(deadline, now, calendar)
        explanation = None
        if with_explanation and proof is not None:
            explanation = proof.explanation
        elif with_explanation and calendar is not None and deadline is not None:
            explanation = explain(started_at, target, calendar)
        return ClockStatus(
            metric=Metric(metric),
            state=State(state),
            severity=severity,
            policy_version=version,
            description=description,
            calendar=calendar_name,
            started_at=started_at,
            target=target,
            deadline=deadline,
            at_risk_at=at_risk_at,
            provisional=provisional,
            met_at=met_at,
            breached_at=breached_at,
            stopped_at=stopped_at,
            remaining=remaining,
            explanation=explanation,
            explanation_recorded=explanation is not None and proof is not None,
            proof_policy_version=proof.policy_version if proof is not None else None,
            assessed=assessed,
        )

    def _calendar(
        self, version: str, category: str, severity: str, locale: Locale | None
    ) -> BusinessCalendar | None:
        try:
            return self._targets.initial(version, category, severity, locale).calendar
        except LookupError:  # unknown policy version, or the customer's locale
            return None


def _proof(recorded: dict[str, Any] | None) -> DeadlineProof | None:
    return Proof.model_validate(recorded).to_domain() if recorded is not None else None


# Cases answered in [since, until) that were promised a first response at opening; the
# rollup's row with no period is the whole range.
_PROMISES = (
    "SELECT period, count(*), count(*) FILTER (WHERE kept), "
    "percentile_cont(0.5) WITHIN GROUP (ORDER BY error) FROM ("
    "SELECT date_trunc(%s, first_response_at, 'UTC') AS period, "
    "first_response_at <= promised_response_at AS kept, "
    "extract(epoch FROM first_response_at - promised_response_at)::float8 AS error "
    "FROM casebook_sla_cases WHERE promised_response_at IS NOT NULL "
    "AND first_response_at >= %s AND first_response_at < %s) AS p "
    "GROUP BY ROLLUP (period) ORDER BY period NULLS FIRST"
)
_CASE = (
    "c.case_id, c.organisation_id, c.category, c.severity, c.status, c.agent_id, c.opened_at, "
    "c.unresponsive_since, c.due_at, c.incident_id"
)
_CASE_N = 10
# The locale recorded at opening, else the organisation's.
_LOCALE = "COALESCE(c.customer_timezone, o.timezone), COALESCE(c.customer_country, o.country)"
_CLOCK = (
    "k.metric, k.state, k.severity, k.policy_version, k.description, k.calendar, k.started_at, "
    "k.target_seconds, k.deadline, k.at_risk_at, k.provisional, k.met_at, k.breached_at, "
    "k.stopped_at, k.assessed"
)
