"""Completeness checks from the command line: is a projection missing stored events?

Shared by `casebook projections check` and `casebook audit verify`. A projection that
is merely behind (the pipeline is catching up) looks like one that lost events; `--settle`
gives it time: while anything is missing, the check runs again every second until it
passes or the time is up. Each check covers what was stored when the first began, so
events written meanwhile cannot keep it from settling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import psycopg
import typer

if TYPE_CHECKING:
    from projections.audit.completeness import Completeness

T = TypeVar("T")

Settle = Annotated[
    float,
    typer.Option(
        "--settle",
        min=0,
        metavar="SECONDS",
        help="While anything is missing, check again for up to this long (the pipeline "
        "may be catching up).",
    ),
]


def settle(check: Callable[[], T], done: Callable[[T], bool], seconds: float) -> T:
    """`check()` until `done` with its result or `seconds` have passed; the last result."""
    deadline = time.monotonic() + seconds
    found = check()
    while not done(found) and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        found = check()
    return found


def audit_completeness(
    conn: psycopg.Connection[Any], seconds: float, case_id: str | None = None
) -> Completeness:
    """The audit log's completeness (one case's chains, or all), settled for `seconds`."""
    from projections.audit.completeness import check, horizon_now

    horizon = horizon_now(conn)
    return settle(
        lambda: check(conn, case_id=case_id, horizon=horizon), lambda c: c.complete, seconds
    )


def echo_missing(found: Completeness) -> None:
    """One line per incomplete chain listed, and how many more there are."""
    for missing in found.first_missing:
        typer.echo(f"  {missing.describe()}")
    more = found.incomplete_chains - len(found.first_missing)
    if more > 0:
        typer.echo(f"  ... and {more} more incomplete chain(s)")


def check_audit(conn: psycopg.Connection[Any], seconds: float) -> bool:
    """Print whether every stored event and SLA event has its audit entry."""
    found = audit_completeness(conn, seconds)
    if found.complete:
        typer.echo("audit: complete: every stored event and SLA event has its audit entry")
        return True
    typer.echo(f"audit: incomplete: {found.summary()}")
    echo_missing(found)
    return False


def check_sla(conn: psycopg.Connection[Any], seconds: float) -> bool:
    """Print whether the SLA tracker has every stored case at its last version."""
    from projections.sla.completeness import check, store_position

    upto = store_position(conn)
    found = settle(lambda: check(conn, upto=upto), lambda c: c.complete, seconds)
    typer.echo(f"sla: {found.summary()}")
    for lagging in found.first_lagging:
        typer.echo(f"  {lagging.describe()}")
    more = found.without_row + found.behind - len(found.first_lagging)
    if more > 0:
        typer.echo(f"  ... and {more} more case(s)")
    return found.complete
