"""`casebook audit` commands: timeline, state as of, diff, verify, access records.

They read the database directly (the operator's own access, not an API read): the
audit log for timelines, verification and access records; the event store for a
case's state as of an instant or version. Human-readable by default, `--json` prints
the auditor API's shapes. Refusals are one line and exit 1; so is a broken chain, and
so is a chain that lacks stored events (incomplete).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import psycopg
import typer

from api.instants import InstantOutOfRange, within_range
from casebook.database import Database
from casebook.errors import AuditQueryInvalid
from casebook.settings import get_settings
from entrypoints.cli.checks import Settle, audit_completeness, echo_missing
from entrypoints.cli.db import command_casebook, command_database
from entrypoints.logging import configure_logging

if TYPE_CHECKING:
    from projections.audit.verify import Verification

CaseArg = Annotated[UUID, typer.Argument(metavar="CASE", help="The case id.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to `casebook audit`."""
    app.command("timeline")(timeline_command)
    app.command("state")(state_command)
    app.command("diff")(diff_command)
    app.command("verify")(verify_command)
    app.command("access")(access_command)


def timeline_command(case_id: CaseArg, as_json: Json = False) -> None:
    """A case's audit entries (its own and its SLA clocks'), in the order they happened."""
    from api.audit_views import AuditEntryView, TimelineView
    from projections.audit.queries import timeline

    with _database() as db:
        with psycopg.connect(db.url) as conn:
            entries = [AuditEntryView.model_validate(e) for e in timeline(conn, str(case_id))]
        if not entries:
            with command_casebook(db, get_settings()) as casebook:
                casebook.get_case(case_id)  # no such case: one line, exit 1
    if as_json:
        typer.echo(TimelineView(case_id=case_id, entries=entries).model_dump_json())
        return
    for e in entries:
        who = f"{e.actor_id} ({e.actor_role}, {e.channel})" if e.actor_id else "-"
        if e.api_key_id or e.client_address or e.request_id:
            who += (
                f" from {e.client_address or '?'} (key {e.api_key_id or '?'}, "
                f"request {e.request_id or '?'})"
            )
        changes = "; ".join(f"{k}: {_short(v[0])} -> {_short(v[1])}" for k, v in e.changes.items())
        typer.echo(
            f"{_instant(e.occurred_at)}  {e.stream} #{e.seq}  {e.event_type}  {who}  "
            f"{e.outcome}  {changes}"
        )
    if not entries:
        typer.echo(f"no audit entries for case {case_id} yet", err=True)


def state_command(
    case_id: CaseArg,
    at: Annotated[
        str | None, typer.Option("--at", help="An instant, ISO 8601 with offset.")
    ] = None,
    version: Annotated[int | None, typer.Option("--version", help="A version of the case.")] = None,
    as_json: Json = False,
) -> None:
    """The case as it was at an instant or version, rebuilt from the event store."""
    from api.audit_views import CaseStateView, state_fields
    from projections.audit.history import Point, state_as_of

    point = Point(_parse(at, "--at"), version, "--at", "--version")
    with _database() as db, command_casebook(db, get_settings()) as casebook:
        found = state_as_of(casebook, case_id, point)
    if as_json:
        typer.echo(CaseStateView.of(case_id, found).model_dump_json())
        return
    assert found.at is not None
    typer.echo(f"case {case_id} at version {found.version} ({_instant(found.at)})")
    for name, value in state_fields(found).items():
        typer.echo(f"  {name}: {_short(value)}")


def diff_command(
    case_id: CaseArg,
    from_at: Annotated[str | None, typer.Option("--from", help="Start instant (ISO 8601).")] = None,
    to_at: Annotated[
        str | None, typer.Option("--to", help="End instant (ISO 8601); default: the latest.")
    ] = None,
    from_version: Annotated[
        int | None, typer.Option("--from-version", help="Start version (0: before opening).")
    ] = None,
    to_version: Annotated[int | None, typer.Option("--to-version", help="End version.")] = None,
    as_json: Json = False,
) -> None:
    """Each field of the case before -> after between two instants or versions, and the
    events in between."""
    from api.audit_views import CaseDiffView, field_changes
    from projections.audit.history import Point, changes_between

    start = Point(_parse(from_at, "--from"), from_version, "--from", "--from-version")
    end = Point(_parse(to_at, "--to"), to_version, "--to", "--to-version")
    with _database() as db, command_casebook(db, get_settings()) as casebook:
        change = changes_between(casebook, case_id, start, end)
    if as_json:
        typer.echo(CaseDiffView.of(case_id, change).model_dump_json())
        return
    before, after = change.before, change.after
    typer.echo(
        f"case {case_id}: version {before.version} ({_instant(before.at)}) -> "
        f"version {after.version} ({_instant(after.at)})"
    )
    changes = field_changes(before, after)
    typer.echo("changes:" if changes else "changes: none")
    for name, old, new in changes:
        typer.echo(f"  {name}: {_short(old)} -> {_short(new)}")
    typer.echo("events:" if change.events else "events: none")
    for event in change.events:
        who = f" by {event.actor.principal_id} ({event.actor.role.value})" if event.actor else ""
        typer.echo(f"  v{event.version}  {_instant(event.occurred_at)}  {event.type}{who}")


def verify_command(
    case_id: Annotated[
        UUID | None, typer.Argument(metavar="[CASE]", help="One case; default: the whole log.")
    ] = None,
    as_json: Json = False,
    settle: Settle = 0,
) -> None:
    """Verify the hash chains of one case or of the whole log, and that every stored event
    has its entry; exit 1 naming each broken chain's first bad entry (modified) and each
    incomplete chain's first missing event (incomplete)."""
    from api.audit_views import VerificationView
    from projections.audit.queries import entry_count
    from projections.audit.verify import verify_case, verify_log

    with _database() as db, psycopg.connect(db.url) as conn:
        completeness = audit_completeness(conn, settle, str(case_id) if case_id else None)
        if case_id is not None:
            result = verify_case(conn, str(case_id))
            if result.chains == 0:
                with command_casebook(db, get_settings()) as casebook:
                    casebook.get_case(case_id)  # no such case: one line, exit 1
        else:
            total = entry_count(conn)
            with typer.progressbar(
                length=total, label="verifying", file=sys.stderr, show_pos=True
            ) as bar:
                result = verify_log(conn, progress=bar.update)
    result.completeness = completeness
    if as_json:
        typer.echo(VerificationView.of(result).model_dump_json())
    else:
        what = f"case {case_id}" if case_id is not None else "the audit log"
        access = f" and {result.access_records} access record(s)" if case_id is None else ""
        typer.echo(
            f"{what}: {result.entries} entries in {result.chains} chain(s){access}: "
            f"{_state(result)}"
        )
        if result.breaks:
            typer.echo("modified:")
        for found in result.breaks:
            typer.echo(f"  {found.describe()}")
        if not completeness.complete:
            typer.echo("incomplete:")
            echo_missing(completeness)
    if not result.intact:
        raise typer.Exit(1)


def _state(result: Verification) -> str:
    """`intact`, or what is wrong: chains modified (a break), entries missing (incomplete)."""
    wrong = [f"modified ({len(result.breaks)} broken chain(s))"] if result.breaks else []
    if result.completeness is not None and not result.completeness.complete:
        wrong.append(f"incomplete ({result.completeness.summary()})")
    return ", ".join(wrong) or "intact"


def access_command(
    case_id: Annotated[UUID | None, typer.Option("--case", help="Only reads of this case.")] = None,
    principal: Annotated[str | None, typer.Option(help="Only this reader.")] = None,
    since: Annotated[str | None, typer.Option(help="From (inclusive), ISO 8601.")] = None,
    until: Annotated[str | None, typer.Option(help="To (exclusive), ISO 8601.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    after: Annotated[int | None, typer.Option(min=0, help="Continue after this access id.")] = None,
    as_json: Json = False,
) -> None:
    """Reads of case data through the API: who, when, which route, why; oldest first."""
    from api.audit_views import AccessView
    from projections.audit.queries import AccessFilter, access_records

    start, end = _parse(since, "--since"), _parse(until, "--until")
    if start is not None and end is not None and start >= end:
        raise AuditQueryInvalid(f"--since ({since}) must be before --until ({until})", "--until")
    where = AccessFilter(str(case_id) if case_id else None, principal, start, end)
    with _database() as db, psycopg.connect(db.url) as conn:
        rows = access_records(conn, where, limit=limit + 1, after=after)
    items = [AccessView.model_validate(row) for row in rows[:limit]]
    more = items[-1].access_id if len(rows) > limit else None
    if as_json:
        typer.echo(
            json.dumps({"items": [i.model_dump(mode="json") for i in items], "next_after": more})
        )
        return
    for r in items:
        about = (
            f"case {r.case_id}"
            if r.case_id
            else (f"organisation {r.organisation_id}" if r.organisation_id else "-")
        )
        reader = f"{r.principal_id} ({r.role})" + (
            f" for {r.on_behalf_of}" if r.on_behalf_of else ""
        )
        typer.echo(
            f"{r.access_id}  {_instant(r.at)}  {reader}  {r.method} {r.path}"
            f"  {r.route}  {about}  reason={r.reason or '-'}  request={r.request_id or '-'}"
            f"  from={r.client_address or '-'}"
        )
    if more is not None:
        typer.echo(f"more: --after {more}", err=True)


@contextmanager
def _database() -> Iterator[Database]:
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db:
        yield db


def _parse(text: str | None, name: str) -> datetime | None:
    """An ISO 8601 instant with offset, in the range accepted, or a one-line refusal naming
    the option."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise AuditQueryInvalid(
            f"{name} {text!r} is not an ISO 8601 instant, e.g. 2025-03-01T09:00:00Z", name
        ) from None
    if value.tzinfo is None:
        raise AuditQueryInvalid(f"{name} needs a UTC offset, e.g. 2025-03-01T09:00:00Z", name)
    try:
        return within_range(value)
    except InstantOutOfRange as error:
        raise AuditQueryInvalid(f"{name} {error}", name) from None


def _instant(at: datetime | None) -> str:
    return at.isoformat().replace("+00:00", "Z") if at is not None else "before opening"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
