"""`casebook keys ...`: create, list and revoke API keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from api.keys import KeyRole, KeyStore
from casebook.settings import get_settings
from entrypoints.cli.db import command_database
from entrypoints.logging import configure_logging

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@keys_app.command("create")
def create(
    role: Annotated[KeyRole, typer.Option(help="What the key may do.")],
    label: Annotated[str, typer.Option(help="A note saying who or what holds the key.")] = "",
    principal: Annotated[
        str | None, typer.Option(help="Principal id the key acts as (default: <role>-<id>).")
    ] = None,
) -> None:
    """Create a key and print its token (the only line on stdout; it is shown only once)."""
    settings = get_settings()
    configure_logging(settings, stream="stderr")  # stdout carries only the token
    with command_database(settings) as db:
        created = KeyStore.for_database(db).create(role, label=label, principal_id=principal)
    typer.echo(created.token)
    print(
        f"created key {created.key_id} for {created.principal_id} ({created.role.value}); "
        "store the token now, it cannot be shown again",
        file=sys.stderr,
    )


@keys_app.command("list")
def list_keys() -> None:
    """List keys: id, role, principal, created, revoked (or 'active'), label."""
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db:
        keys = KeyStore.for_database(db).list()
    for key in keys:
        revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "active"
        created = key.created_at.isoformat(timespec="seconds")
        typer.echo(
            f"{key.key_id}  {key.role.value:<10}  {key.principal_id}  {created}  {revoked}"
            + (f"  {key.label}" if key.label else "")
        )


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="Id of the key, as `keys list` shows.")],
) -> None:
    """Revoke a key: from now on, except that an API process that verified it in the last
    CASEBOOK_API_KEY_CACHE_SECONDS (5 s by default) accepts it until that time is up."""
    settings = get_settings()
    configure_logging(settings, stream="stderr")
    with command_database(settings) as db:
        revoked = KeyStore.for_database(db).revoke(key_id)
    if not revoked:
        raise KeyNotActive(f"no active key with id {key_id!r}")
    typer.echo(f"revoked {key_id}")


class KeyNotActive(RuntimeError):
    """The key to revoke does not exist or was already revoked."""
