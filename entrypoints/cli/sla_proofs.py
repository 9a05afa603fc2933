"""`casebook sla verify|provisional|refresh`: recorded deadlines re-proven and refreshed.

They read the SLA tracker's tables directly with the policies the tracker computes with
(`CASEBOOK_POLICY_FILE` and the archive) and the calendar data installed here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import psycopg
import typer

from casebook.settings import get_settings
from entrypoints.cli.db import command_database
from entrypoints.logging import configure_logging
from projections.sla.policies import target_book
from projections.sla.proofs import CaseNotTracked, provisional, refresh_provisional, verify
from projections.sla.targets import TargetBook


def register(app: typer.Typer) -> None:
    """Add this module's commands to `casebook sla`."""
    app.command("verify")(verify_command)
    app.command("provisional")(provisional_command)
    app.command("refresh")(refresh_command)


def verify_command(
    case_id: Annotated[
        UUID | None, typer.Argument(metavar="CASE", help="The case whose clocks to re-prove.")
    ] = None,
    every_case: Annotated[bool, typer.Option("--all", help="Re-prove every clock.")] = False,
) -> None:
    """Recompute each clock's deadline and proof from its recorded inputs and compare
    them with the record; exit 1 naming every clock that differs."""
    if (case_id is not None) == every_case:
        raise typer.BadParameter("give a CASE or --all (not both)")
    with _connection() as (conn, targets):
        try:
            found = verify(
                conn,
                targets,
                str(case_id) if case_id is not None else None,
                progress=lambda n: print(f"verified {n} clocks ...", file=sys.stderr),
            )
        except CaseNotTracked as error:
            typer.echo(f"casebook: error: {error}", err=True)
            raise typer.Exit(1) from None
    for clock in found.differing:
        typer.echo(f"case {clock.case_id} {clock.metric.value}: differs")
        for difference in clock.differences:
            typer.echo(f"  {difference}")
    unproven = f", {found.unproven} recorded without a proof" if found.unproven else ""
    verdict = f"{len(found.differing)} differ" if found.differing else "no difference"
    typer.echo(f"{found.clocks} clocks verified{unproven}: {verdict}")
    if found.differing:
        raise typer.Exit(1)


def provisional_command() -> None:
    """List the open clocks whose deadline rests on an estimated holiday schedule."""
    with _connection() as (conn, _):
        clocks = provisional(conn)
    for clock in clocks:
        years = ", ".join(str(y) for y in clock.years) if clock.years is not None else "unknown"
        typer.echo(
            f"{clock.case_id} {clock.metric.value} {clock.state} "
            f"deadline {clock.deadline.astimezone(UTC).isoformat()} years {years}"
        )
    typer.echo(f"{len(clocks)} provisional clock(s)", err=True)


def refresh_command() -> None:
    """Recompute the provisional clocks with the installed calendar data; each deadline
    that moves is recomputed and published as an SLA event (clock_recomputed)."""
    with _connection() as (conn, targets):
        done = refresh_provisional(conn, targets, datetime.now(UTC))
    for moved in done.moved:
        typer.echo(
            f"{moved.case_id} {moved.metric.value}: deadline "
            f"{moved.before.astimezone(UTC).isoformat()} -> "
            f"{moved.after.astimezone(UTC).isoformat()}"
        )
    typer.echo(
        f"{len(done.moved)} deadline(s) moved, {done.reproven} re-proven unmoved, "
        f"{done.unchanged} unchanged"
    )


@contextmanager
def _connection() -> Iterator[tuple[psycopg.Connection[Any], TargetBook]]:
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    targets = target_book(settings)
    with command_database(settings) as db, psycopg.connect(db.url) as conn:
        yield conn, targets
