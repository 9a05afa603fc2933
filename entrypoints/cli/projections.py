"""`casebook projections ...`: rebuild a projection beside the live one, compare, clean up,
and check one complete against the store."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

import psycopg
import typer
from psycopg import sql

from casebook.settings import get_settings
from entrypoints.cli.checks import Settle, check_audit, check_sla
from entrypoints.cli.db import command_database
from entrypoints.logging import configure_logging

if TYPE_CHECKING:
    from consumers.rebuild import Progress
    from entrypoints.rebuilds import Difference

projections_app = typer.Typer(
    help="Rebuild projections (blue/green), compare them, check them complete.",
    no_args_is_help=True,
)
Name = Annotated[Literal["sla", "audit"], typer.Argument(help="Which projection.")]
# The stamp: UTC down to the microsecond (down to the second before; those still match).
_LEFTOVER = re.compile(r"^(rebuild|archive)_(sla|audit)_[0-9]{14}([0-9]{6})?$")


@projections_app.command("rebuild")
def rebuild_command(
    name: Name,
    source: Annotated[
        Literal["kafka", "store"],
        typer.Option("--from", help="Replay the topics from the start, or the event store."),
    ] = "kafka",
) -> None:
    """Replay the whole history into fresh tables while the live ones keep serving, then
    switch over once caught up; the old tables are kept in an archive schema."""
    from consumers.rebuild import Rebuild, RebuildRefused
    from entrypoints.rebuilds import compare, store_source, tables_of
    from projections.registry import build

    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db:
        rebuild = Rebuild(
            db,
            settings,
            build(name, settings),
            tables_of(name, db),
            source=source,
            store=store_source(name, db, settings) if source == "store" else None,
            progress=_progress_printer(),
        )
        try:
            outcome = rebuild.run()
        except RebuildRefused as error:
            typer.echo(f"casebook: error: {error}", err=True)
            raise typer.Exit(1) from None
        typer.echo(
            f"\n{name}: rebuilt from {source} ({outcome.events} events) and switched over; "
            f"the previous tables are in schema {outcome.archive}"
        )
        differences = compare(db, name, outcome.archive)
        _print_differences(name, outcome.archive, differences)


@projections_app.command("compare")
def compare_command(
    name: Name,
    other: Annotated[str, typer.Option("--with", help="The schema to compare with.")],
) -> None:
    """Print the rows that differ between the live tables and those in another schema."""
    from entrypoints.rebuilds import compare

    _check_leftover(other)
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db:
        differences = compare(db, name, other)
    _print_differences(name, other, differences)
    if differences:
        raise typer.Exit(1)


@projections_app.command("check")
def check_command(name: Name, settle: Settle = 0) -> None:
    """Check a projection complete against the store (sla: every case has its row at its
    last version; audit: every stored event and SLA event has its entry); exit 1 if not."""
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db, psycopg.connect(db.url) as conn:
        complete = check_audit(conn, settle) if name == "audit" else check_sla(conn, settle)
    if not complete:
        raise typer.Exit(1)


@projections_app.command("drop")
def drop_command(
    schema: Annotated[str, typer.Argument(help="A rebuild_* or archive_* schema.")],
) -> None:
    """Drop a rebuild's leftover schema (an archive of replaced tables, or a stopped rebuild)."""
    _check_leftover(schema)
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db, psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    typer.echo(f"dropped {schema}")


def _check_leftover(schema: str) -> None:
    if not _LEFTOVER.match(schema):
        raise typer.BadParameter(
            f"{schema!r} is not a rebuild's schema "
            "(rebuild_<name>_<stamp> or archive_<name>_<stamp>)"
        )


def _print_differences(name: str, other: str, differences: list[Difference]) -> None:
    if not differences:
        typer.echo(f"{name}: the live tables equal those in {other}")
        return
    for d in differences:
        typer.echo(
            f"{name}: {d.table}: {d.only_live} row(s) only live, {d.only_other} only in {other}"
        )
        for sample in d.samples:
            typer.echo(f"    {sample}")


def _progress_printer() -> Callable[[Progress], None]:
    """A progress bar with the ETA on a terminal; a line every 10 % otherwise."""
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        bar = Bar(
            TextColumn("rebuilding"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        task = bar.add_task("rebuild", total=None)
        bar.start()

        def show(progress: Progress) -> None:
            bar.update(task, completed=progress.applied, total=progress.total)
            if progress.applied >= progress.total:
                bar.stop()

        return show

    reported = {"tenth": -1}

    def log_line(progress: Progress) -> None:
        tenth = progress.applied * 10 // max(progress.total, 1)
        if tenth > reported["tenth"]:
            reported["tenth"] = tenth
            eta = progress.eta_seconds
            left = f", about {eta:.0f} s left" if eta is not None else ""
            print(f"rebuilt {progress.applied}/{progress.total} events{left}", file=sys.stderr)

    return log_line
