"""A case as the SLA tracker sees it, and what each case event does to its clocks.

Pure: the projection loads `CaseView`s, calls `apply_case_event` per event, and saves
the views and the transitions. Before an event acts, the case's clocks are advanced to
the event's own time, so a projection rebuilt from scratch records the same transitions
at the same instants as one that followed live.

It stays one module because every case event's effect on the clocks (the triage clock's
start at the opening and its recomputation at the assessment included) reads and writes
the same view through the same target helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.cases.events import UNSPECIFIED_REASON
from domain.sla.business_time import elapsed
from domain.sla.clock import (
    Clock,
    Metric,
    Transition,
    advance,
    finish,
    last,
    recompute,
    start,
)
from projections.sla.targets import Locale, LocaleUnknown, TargetBook

OPEN, AWAITING, RESOLVED = "open", "awaiting_assessment", "resolved"
CUSTOMER_ADMIN = "customer_admin"


@dataclass
class CaseView:
    """What the queue and the clocks need to know about one case."""

    case_id: str
    organisation_id: str
    category: str
    status: str
    opened_at: datetime
    severity: str | None = None
    agent_id: str | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    # The closure reason of the current resolution and whether the policy counts it out
    # of scope (§3); None and False while the case is not resolved.
    closure_reason: str | None = None
    out_of_scope: bool = False
    unresponsive_since: datetime | None = None
    version: int = 0
    # The first response promised at opening (None: opened before promises, or none made).
    promised_response_at: datetime | None = None
    # Opening to first response in business time on the initial clock's calendar (what
    # the expected waiting time's median reads); None while unanswered or not computable.
    first_response_business_seconds: float | None = None
    # The customer's survey answer (§6), for the satisfaction report; None until answered.
    satisfaction_score: int | None = None
    satisfaction_at: datetime | None = None
    # The customer's locale recorded at opening (None for requests opened before cases
    # recorded it: the organisation's locale, as the tracker last knew it, applies).
    locale: Locale | None = None
    clocks: dict[Metric, Clock] = field(default_factory=dict)
    incident_id: str | None = None  # the service incident it was filed about

    @property
    def due_at(self) -> datetime | None:
        """The nearest deadline an agent still has to meet: the queue's order."""
        due = [c.open_deadline for c in self.clocks.values() if c.open_deadline is not None]
        return min(due) if due else None


@dataclass
class Tracker:
    """Applies case events to views with the targets and the customers' locales."""

    targets: TargetBook
    locales: Mapping[str, Locale]
    transitions: list[Transition] = field(default_factory=list)

    def apply(
        self,
        view: CaseView | None,
        case_id: str,
        name: str,
        data: dict[str, Any],
        sequence: int,
    ) -> CaseView | None:
        """`view` after the case event `name` (e.g. "severity_assigned") at `sequence`."""
        at = datetime.fromisoformat(data["at"])
        if name == "opened":
            view = CaseView(
                case_id=case_id,
                organisation_id=str(data["organisation_id"]),
                category=str(data["category"]),
                status=AWAITING,
                opened_at=at,
                locale=_locale_at_opening(data),
                promised_response_at=_instant(data.get("expected_response_at")),
            )
            self._start_triage(view, _triage_severity(data), str(data["policy_version"]), at)
        if view is None:
            return None
        for metric, clock in list(view.clocks.items()):
            self._record(view, metric, advance(clock, at))
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, view, data, at)
        view.version = sequence
        return view

    def relocate(self, view: CaseView, at: datetime, reason: str) -> None:
        """Recompute the clocks that run on the customer's calendar (locale now known/changed)."""
        if view.locale is not None:
            return  # the case keeps the locale it was opened with
        for metric, clock in list(view.clocks.items()):
            if clock.is_finished:
                continue
            version = clock.policy_version
            if self.targets.depends_on_customer(version, view.category, clock.severity):
                target = self._target(view, metric, version, clock.severity)
                moved = recompute(
                    clock, clock.severity, target, calendar=clock.calendar, at=at, reason=reason
                )
                self._record(view, metric, moved)

    def _start_triage(self, view: CaseView, severity: str, version: str, at: datetime) -> None:
        """An unassessed case's clock from its opening, on the strictest target the domain
        allowed it when it opened (`triage_severity` on the Opened event)."""
        self._record(
            view,
            Metric.INITIAL_RESPONSE,
            start(
                view.case_id,
                Metric.INITIAL_RESPONSE,
                severity,
                view.opened_at,
                self._target(view, Metric.INITIAL_RESPONSE, version, severity),
                calendar=self._calendar(view, version, severity),
                policy_version=version,
                at=at,
                reason=f"opened, awaiting assessment: triage target {severity}",
                assessed=False,
            ),
        )

    # --- handlers -----------------------------------------------------------------------

    def _severity_assigned(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        view.severity = str(data["severity"])
        view.status = OPEN
        version = str(data["policy_version"])
        triage = view.clocks.get(Metric.INITIAL_RESPONSE)
        if triage is not None and not triage.is_finished:
            # The assessment recomputes the triage clock from the opening (§7.5).
            reason = f"severity {view.severity} assigned (triage target {triage.severity})"
            target = self._target(view, Metric.INITIAL_RESPONSE, version)
            calendar = self._calendar(view, version)
            moved = recompute(
                triage,
                view.severity,
                target,
                calendar=calendar,
                at=at,
                reason=reason,
                assessed=True,
            )
            self._record(view, Metric.INITIAL_RESPONSE, moved)
            return
        self._record(
            view,
            Metric.INITIAL_RESPONSE,
            start(
                view.case_id,
                Metric.INITIAL_RESPONSE,
                view.severity,
                view.opened_at,
                self._target(view, Metric.INITIAL_RESPONSE, version),
                calendar=self._calendar(view, version),
                policy_version=version,
                at=at,
                reason=f"severity {view.severity} assigned",
            ),
        )

    def _escalated(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        self._severity_changed(view, data, at, "escalated")

    def _downgraded(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        view.unresponsive_since = None
        self._severity_changed(view, data, at, "downgraded after the customer did not respond")

    def _severity_changed(
        self, view: CaseView, data: dict[str, Any], at: datetime, why: str
    ) -> None:
        previous, view.severity = view.severity, str(data["severity"])
        version = str(data["policy_version"])
        reason = f"{why}: {previous} -> {view.severity}"
        initial = view.clocks.get(Metric.INITIAL_RESPONSE)
        if initial is not None and not initial.is_finished:
            target = self._target(view, Metric.INITIAL_RESPONSE, version)
            calendar = self._calendar(view, version)
            self._record(
                view,
                Metric.INITIAL_RESPONSE,
                recompute(initial, view.severity, target, calendar=calendar, at=at, reason=reason),
            )
        if view.first_response_at is not None and view.status == OPEN:
            self._cycle_follow_up(view, version, at, reason, meets=False)

    def _unresponsive(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        view.unresponsive_since = at

    def _note(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        if data.get("by", {}).get("role") == CUSTOMER_ADMIN:
            view.unresponsive_since = None

    def _responded(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        version = str(data["policy_version"])
        initial = view.clocks.get(Metric.INITIAL_RESPONSE)
        if data.get("first_response") and view.first_response_at is None:
            view.first_response_at = at
            if initial is not None:
                view.first_response_business_seconds = self._business_seconds(view, initial, at)
                self._record(
                    view,
                    Metric.INITIAL_RESPONSE,
                    finish(initial, at, "first response", meets=True),
                )
        self._cycle_follow_up(view, version, at, "response to the customer", meets=True)

    def _agent_assigned(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        view.agent_id = str(data["agent_id"])

    def _resolved(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        view.status, view.resolved_at = RESOLVED, at
        # Resolved v1 events had no reason; the store upcasts them, the topic may not.
        view.closure_reason = str(data.get("reason", UNSPECIFIED_REASON))
        view.out_of_scope = bool(data.get("out_of_scope", False))
        for metric, clock in list(view.clocks.items()):
            meets = metric is Metric.FOLLOW_UP
            self._record(view, metric, finish(clock, at, "resolved", meets=meets))

    def _satisfaction(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        view.satisfaction_score, view.satisfaction_at = int(data["score"]), at

    def _reopened(self, view: CaseView, data: dict[str, Any], at: datetime) -> None:
        view.status, view.resolved_at = OPEN, None
        view.closure_reason, view.out_of_scope = None, False
        if view.first_response_at is not None:
            self._cycle_follow_up(view, str(data["policy_version"]), at, "reopened", meets=True)

    # --- helpers ------------------------------------------------------------------------

    def _cycle_follow_up(
        self, view: CaseView, version: str, at: datetime, reason: str, *, meets: bool
    ) -> None:
        """End the running follow-up cycle and, if the severity has a cadence, start the next."""
        current = view.clocks.get(Metric.FOLLOW_UP)
        numbered_after = 0
        if current is not None:
            ended = finish(current, at, reason, meets=meets)
            self._record(view, Metric.FOLLOW_UP, ended)
            numbered_after = last(current, ended).transitions
        if view.severity is None or not self.targets.has_follow_up(
            version, view.category, view.severity
        ):
            return
        self._record(
            view,
            Metric.FOLLOW_UP,
            start(
                view.case_id,
                Metric.FOLLOW_UP,
                view.severity,
                at,
                self._target(view, Metric.FOLLOW_UP, version),
                calendar=self._calendar(view, version),
                policy_version=version,
                at=at,
                reason=reason,
                numbered_after=numbered_after,
            ),
        )

    def _target(
        self, view: CaseView, metric: Metric, version: str, severity: str | None = None
    ) -> Any:
        """The target at `severity` (default: the case's assessed one)."""
        severity = severity or view.severity
        assert severity is not None
        locale = view.locale or self.locales.get(view.organisation_id)
        initial = metric is Metric.INITIAL_RESPONSE
        resolve = self.targets.initial if initial else self.targets.follow_up
        try:
            return resolve(version, view.category, severity, locale)
        except LocaleUnknown:
            return None

    def _business_seconds(self, view: CaseView, clock: Clock, at: datetime) -> float | None:
        target = self._target(view, clock.metric, clock.policy_version, clock.severity)
        return (
            None if target is None else elapsed(view.opened_at, at, target.calendar).total_seconds()
        )

    def _calendar(self, view: CaseView, version: str, severity: str | None = None) -> str:
        severity = severity or view.severity
        assert severity is not None
        return self.targets.calendar_name(version, view.category, severity)

    def _record(self, view: CaseView, metric: Metric, transitions: list[Transition]) -> None:
        if transitions:
            view.clocks[metric] = transitions[-1].clock
            self.transitions.extend(transitions)


def _linked_to_incident(_: Tracker, view: CaseView, data: dict[str, Any], at: datetime) -> None:
    view.incident_id = str(data["incident_id"])  # no clock depends on it


_HANDLERS: dict[str, Callable[[Tracker, CaseView, dict[str, Any], datetime], None]] = {
    "severity_assigned": Tracker._severity_assigned,
    "escalated": Tracker._escalated,
    "downgraded": Tracker._downgraded,
    "customer_unresponsive": Tracker._unresponsive,
    "note_added": Tracker._note,
    "responded": Tracker._responded,
    "agent_assigned": Tracker._agent_assigned,
    "resolved": Tracker._resolved,
    "reopened": Tracker._reopened,
    "satisfaction_recorded": Tracker._satisfaction,
    "linked_to_incident": _linked_to_incident,
}


# Openings recorded before casebook.case.opened.v3 carry no triage severity: their triage
# clock runs on B, the strictest target every category allows every organisation (the
# agreement at the opening is not on those events, and reading it from the organisation's
# events would make the clock depend on the order partitions are read in).
LEGACY_TRIAGE_SEVERITY = "B"


def _triage_severity(data: dict[str, Any]) -> str:
    return str(data.get("triage_severity") or LEGACY_TRIAGE_SEVERITY)


def _locale_at_opening(data: dict[str, Any]) -> Locale | None:
    zone, country = data.get("customer_timezone"), data.get("customer_country")
    return Locale(timezone=str(zone), country=str(country)) if zone and country else None


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None
