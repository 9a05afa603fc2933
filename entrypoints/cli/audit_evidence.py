"""`casebook audit` commands: evidence bundles, their offline verification, checkpoints.

`export` reads the database (the operator's own access) and signs the bundle's manifest
with the audit signing key; `verify-bundle` needs nothing but the file, and optionally
the public key the auditor expects; `checkpoint` signs a checkpoint now, so an export
made right after covers every entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID

import psycopg
import typer

from api.instants import InstantOutOfRange, within_range
from casebook.settings import get_settings
from entrypoints.cli.db import command_database
from entrypoints.logging import configure_logging


class EvidenceRefused(RuntimeError):
    """An export or verification that could not be done or did not pass (exit 1)."""


def register(app: typer.Typer) -> None:
    """Add this module's commands to `casebook audit`."""
    app.command("export")(export_command)
    app.command("verify-bundle")(verify_bundle_command)
    app.command("checkpoint")(checkpoint_command)


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 instant", param_hint=option
        ) from None
    if at.tzinfo is None:
        raise typer.BadParameter(f"{value!r} needs a UTC offset (e.g. +00:00)", param_hint=option)
    try:
        return within_range(at)
    except InstantOutOfRange as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def export_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the bundle (a zip).")],
    case: Annotated[UUID | None, typer.Option("--case", help="A case id.")] = None,
    organisation: Annotated[
        UUID | None, typer.Option("--organisation", help="An organisation id.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From this instant (ISO 8601 with offset).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this instant (ISO 8601 with offset).")
    ] = None,
) -> None:
    """Write an evidence bundle: a case's (or organisation's) audit entries with proofs,
    its manifest signed with the audit signing key (as `checkpoint` finds it)."""
    from projections.audit.evidence import EvidenceRequest, EvidenceUnavailable, exporting
    from projections.audit.signing import load_signing_key

    if (case is None) == (organisation is None):
        raise typer.BadParameter("give exactly one of --case and --organisation")
    start, end = _instant(since, "--since"), _instant(until, "--until")
    if start is not None and end is not None and start >= end:
        raise typer.BadParameter("--since must be before --until")
    request = EvidenceRequest(
        case_id=str(case) if case else None,
        organisation_id=str(organisation) if organisation else None,
        since=start,
        until=end,
    )
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db, psycopg.connect(db.url) as conn:
        try:
            with exporting(conn, request, now=datetime.now(UTC)) as export:
                if export.entries == 0:
                    asked = f"case {case}" if case else f"organisation {organisation}"
                    raise EvidenceRefused(
                        f"no audit entries for {asked} in that period; nothing written"
                    )
                _write(out, export.chunks(load_signing_key(settings)))
        except EvidenceUnavailable as error:
            raise EvidenceRefused(str(error)) from None
    typer.echo(
        f"wrote {out}: {export.entries} entries in {export.chains} chains, "
        f"{export.checkpoints} checkpoint(s), {export.uncovered} not yet covered"
    )


def _write(out: Path, chunks: Iterable[bytes]) -> None:
    """`chunks` to `out` as they come; a bundle cut short is removed, not left behind."""
    try:
        file = out.open("wb")
    except OSError as error:
        raise EvidenceRefused(f"{out}: {error.strerror}") from None
    try:
        with file:
            for chunk in chunks:
                file.write(chunk)
    except BaseException as error:
        if out.is_file():  # not a device such as /dev/stdout
            out.unlink()  # a partial bundle would fail verification later, far from why
        if isinstance(error, OSError):
            raise EvidenceRefused(f"{out}: {error.strerror}") from None
        raise


def verify_bundle_command(
    bundle: Annotated[Path, typer.Argument(metavar="FILE", help="An evidence bundle.")],
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="The key the checkpoints must be signed with (PEM)."),
    ] = None,
) -> None:
    """Check a bundle offline: its files, the manifest's signature, file hash, entry hashes
    and links, segment ends, proofs, checkpoint signatures."""
    from projections.audit.bundle import BundleInvalid, verify_bundle
    from projections.audit.checkpoint import load_public_pem

    expected = None
    if public_key is not None:
        try:
            expected = load_public_pem(public_key.read_bytes())
        except OSError as error:
            raise EvidenceRefused(f"{public_key}: {error.strerror}") from None
        except ValueError as error:
            raise EvidenceRefused(f"{public_key}: {error}") from None
    try:
        data = bundle.read_bytes()
    except OSError as error:
        raise EvidenceRefused(f"{bundle}: {error.strerror}") from None
    try:
        verified = verify_bundle(data, expected)
    except BundleInvalid as error:
        raise EvidenceRefused(f"{bundle}: {error}") from None
    typer.echo(verified.describe())


def checkpoint_command() -> None:
    """Sign a checkpoint over every entry not yet covered (needs the signing key)."""
    from projections.audit.checkpointer import checkpoint_now
    from projections.audit.signing import load_signing_key

    settings = get_settings()
    configure_logging(settings, stream="stderr")
    key = load_signing_key(settings)
    with command_database(settings) as db, psycopg.connect(db.url, autocommit=True) as conn:
        made = checkpoint_now(conn, key)
    if not made:
        typer.echo("every entry is already covered by a checkpoint")
    for checkpoint in made:
        typer.echo(
            f"checkpoint {checkpoint.number}: entries {checkpoint.after + 1}-{checkpoint.upto} "
            f"({checkpoint.count}), root {checkpoint.merkle_root[:16]}..."
        )
