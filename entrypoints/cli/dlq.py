"""`casebook dlq ...` and `casebook consumers status`: dead letters and consumer groups."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer

from casebook.settings import get_settings
from entrypoints.cli.db import command_database
from entrypoints.logging import configure_logging

dlq_app = typer.Typer(help="Dead-lettered events and their parked subjects.", no_args_is_help=True)
consumers_app = typer.Typer(help="Consumer groups and their members.", no_args_is_help=True)


class DlqRefused(RuntimeError):
    """A replay that did not happen (not parked, failed again, unknown group)."""


@dlq_app.command("list")
def list_command(
    group: Annotated[str | None, typer.Option(help="Only this consumer group.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Include replayed and skipped dead letters.")
    ] = False,
) -> None:
    """List dead letters, oldest first: id, group, subject, ce_id, state, waiting, error."""
    from consumers import state

    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db, psycopg.connect(db.url) as conn:
        letters = state.dead_letters(conn, group, include_resolved=all_)
    for dead in letters:
        where = dead.resolution or ("parked" if dead.parked else "open")
        typer.echo(
            f"{dead.id}  {dead.group}  {dead.subject or '-'}  {dead.ce_id or '-'}  {where}"
            f"  waiting={dead.waiting}  attempts={dead.attempts}"
            f"  {dead.dead_at.isoformat(timespec='seconds')}  {dead.error}"
        )


@dlq_app.command("replay")
def replay_command(
    subject: Annotated[str, typer.Argument(help="The parked subject (case id).")],
    group: Annotated[
        str | None, typer.Option(help="Consumer group (projection); needed if several park it.")
    ] = None,
    skip: Annotated[
        bool, typer.Option("--skip", help="Record the dead letter as skipped, do not apply it.")
    ] = False,
) -> None:
    """Re-apply a parked subject's dead letter and the events waiting behind it."""
    from consumers.replay import ReplayError, parked_groups, replay
    from projections.registry import UnknownProjection, build

    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db:
        if group is None:
            groups = parked_groups(db, subject)
            if len(groups) != 1:
                where = f"in groups {', '.join(groups)}" if groups else "in no group"
                raise DlqRefused(f"subject {subject!r} is parked {where}; pass --group")
            group = groups[0]
        try:
            outcome = replay(db, build(group, settings), subject, skip=skip)
        except (ReplayError, UnknownProjection) as error:
            raise DlqRefused(str(error)) from None
    typer.echo(
        f"{outcome.resolution} dead letter {outcome.dead_letter_id} of {subject} in {group}: "
        f"{outcome.applied} event(s) applied, {outcome.duplicates} duplicate(s) dropped"
    )
    if outcome.parked_again is not None:
        again = outcome.parked_again
        raise DlqRefused(
            f"waiting event {again.ce_id or '-'} failed: {again.error}; "
            f"{subject} is parked again on dead letter {again.id}"
        )


@consumers_app.command("status")
def status_command(
    group: Annotated[str | None, typer.Option(help="Only this consumer group.")] = None,
) -> None:
    """Every supervised part (relay, consumers, timer, outbox publishers) and every group
    member: state, lag, restarts, last error. Exit 1 when a part is in trouble."""
    from api.part_reports import reported_parts
    from consumers import state

    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db, psycopg.connect(db.url) as conn:
        parts = reported_parts(conn)
        rows = state.statuses(conn, group)
    if not parts:
        typer.echo("no relay or consumer process is reporting")
    for part in parts:
        lag = "-" if part.lag is None else str(part.lag)
        note = f"  STALE (no report for {part.age_s:.0f} s)" if part.stale else ""
        error = f"  last_error={part.last_error!r}" if part.last_error else ""
        trouble = f"  TROUBLE: {part.trouble}" if part.trouble else ""
        typer.echo(
            f"part {part.part}  {part.state}  lag={lag}  restarts={part.restarts}"
            f"  process={part.process}{note}{trouble}{error}"
        )
    if not rows:
        typer.echo("no consumer is running")
    for row in rows:
        lag = "-" if row.lag is None else str(row.lag)
        typer.echo(
            f"{row.group}  {row.member}  lag={lag}  events/s={row.events_per_second:.1f}"
            f"  parked={row.parked}  applied={row.applied}  dead_lettered={row.dead_lettered}"
            f"  updated={row.updated_at.isoformat(timespec='seconds')}"
            f"  partitions={row.partitions or '-'}"
        )
    if any(part.trouble or part.stale for part in parts):
        raise typer.Exit(1)
