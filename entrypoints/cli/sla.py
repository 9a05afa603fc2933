"""`casebook sla ...`: deadlines and their explanations from the command line."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import Annotated, Any

import typer

from api.instants import InstantOutOfRange, within_range
from casebook.policy_source import load_policy
from casebook.settings import get_settings
from domain.calendars.calendar import ClosedDay, as_utc
from domain.policy import CustomerLocale
from domain.policy.rules import check_severity_for_category
from domain.sla import CountedSpan, DeadlineExplanation, explain, initial_response_target
from domain.values import Category, Severity
from entrypoints.cli import sla_proofs

sla_app = typer.Typer(help="SLA deadlines in business time.", no_args_is_help=True)
sla_proofs.register(sla_app)


@sla_app.command("deadline")
def deadline_command(
    category: Annotated[Category, typer.Option(help="Kind of support.")],
    severity: Annotated[Severity, typer.Option(help="Severity of the request.")],
    opened: Annotated[str, typer.Option(help="When the request was opened, ISO 8601 with offset.")],
    tz: Annotated[
        str | None, typer.Option("--tz", help="Customer's IANA time zone (presales).")
    ] = None,
    country: Annotated[
        str | None, typer.Option(help="Customer's ISO country code (presales holidays).")
    ] = None,
    show_explanation: Annotated[
        bool, typer.Option("--explain", help="List the business time counted.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the initial-response deadline of a request (first line: ISO 8601)."""
    policy = load_policy(get_settings().policy_file)
    check_severity_for_category(policy, category, severity)
    opened_at = _parse_instant(opened)
    customer = _customer(tz, country)
    spec = policy.calendars[policy.target(category, severity).calendar]
    if spec.depends_on_customer and customer is None:
        raise typer.BadParameter(
            f"{category.value} deadlines run on the customer's calendar: give --tz and --country"
        )
    target = initial_response_target(policy, category, severity, customer)
    result = explain(opened_at, target.length, target.calendar)
    shown_in = opened_at.tzinfo if target.calendar.is_continuous else target.calendar.timezone
    if as_json:
        typer.echo(json.dumps(_as_json(result, target.description, policy.version, shown_in)))
    else:
        typer.echo(result.deadline.at.astimezone(shown_in).isoformat())
        if show_explanation:
            typer.echo(
                f"target: {target.description} = {_hours(result.target)} (policy {policy.version})"
            )
            for line in _explanation_lines(result, shown_in):
                typer.echo(line)
    if result.deadline.is_provisional:
        years = ", ".join(str(y) for y in sorted(result.deadline.provisional_years))
        typer.echo(
            f"warning: provisional deadline: no official holiday schedule for {years} "
            f"in calendar {target.calendar.name}",
            err=True,
        )


def _parse_instant(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"--opened {text!r} is not an ISO 8601 timestamp", param_hint="--opened"
        ) from None
    try:
        within_range(instant)  # first: converting an instant near year 9999 overflows
    except InstantOutOfRange as error:
        raise typer.BadParameter(str(error), param_hint="--opened") from None
    as_utc(instant)  # refuses a naive timestamp with a domain error
    return instant


def _customer(tz: str | None, country: str | None) -> CustomerLocale | None:
    if tz is None and country is None:
        return None
    if tz is None or country is None:
        raise typer.BadParameter("give both --tz and --country, or neither")
    try:
        return CustomerLocale(timezone=tz, country=country)
    except ValueError as error:
        first = error.errors()[0] if hasattr(error, "errors") else {"msg": str(error)}
        raise typer.BadParameter(str(first["msg"]).removeprefix("Value error, ")) from None


def _explanation_lines(result: DeadlineExplanation, zone: tzinfo | None) -> list[str]:
    rows: list[tuple[datetime, str]] = []
    for span in result.spans:
        rows.append((span.start, _span_line(span, zone)))
    for day in result.skipped_days:
        line = f"skipped {day.day.isoformat()} {day.day:%a}: {day.reason}"
        rows.append((_local_midnight(day, zone), line))
    rows.sort(key=lambda row: row[0])
    return [line for _, line in rows]


def _span_line(span: CountedSpan, zone: tzinfo | None) -> str:
    start, end = span.start.astimezone(zone), span.end.astimezone(zone)
    note = " (make-up working day)" if span.makeup_workday else ""
    return (
        f"counted {start.isoformat(timespec='minutes')} .. {end.isoformat(timespec='minutes')}"
        f"  {_hours(span.length)}{note}"
    )


def _local_midnight(day: ClosedDay, zone: tzinfo | None) -> datetime:
    # Closed days sort among spans by their local midnight.
    return as_utc(datetime.combine(day.day, datetime.min.time(), tzinfo=zone))


def _hours(length: Any) -> str:
    minutes = int(length.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _as_json(
    result: DeadlineExplanation, description: str, version: str, zone: tzinfo | None
) -> dict[str, Any]:
    return {
        "deadline": result.deadline.at.astimezone(zone).isoformat(),
        "opened": result.start.isoformat(),
        "target": description,
        "business_seconds": int(result.target.total_seconds()),
        "calendar": result.calendar,
        "policy_version": version,
        "provisional_years": sorted(result.deadline.provisional_years),
        "spans": [
            {
                "start": s.start.astimezone(zone).isoformat(),
                "end": s.end.astimezone(zone).isoformat(),
                "seconds": int(s.length.total_seconds()),
                "makeup_workday": s.makeup_workday,
            }
            for s in result.spans
        ],
        "skipped_days": [
            {"date": d.day.isoformat(), "reason": d.reason} for d in result.skipped_days
        ],
    }
