"""`casebook consume sla`: run a projection's consumer (and its timer) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import typer

from casebook.settings import get_settings
from entrypoints.background import run_standalone
from entrypoints.cli.db import command_database
from entrypoints.cli.kafka import required_brokers
from entrypoints.cli.relay import stop_on_signals
from entrypoints.logging import configure_logging

consume_app = typer.Typer(
    help="Run the consumers that keep the projections up to date.", no_args_is_help=True
)


@consume_app.command("sla")
def consume_sla() -> None:
    """The SLA tracker: consume case events, mark clocks at risk or breached, publish SLA events."""
    settings = get_settings()
    configure_logging(settings)
    required_brokers(settings, "`casebook run` starts a local broker and the SLA tracker instead")
    from entrypoints.sla_service import SlaService

    # Outermost: a signal while the database stops is noted, not a KeyboardInterrupt.
    with stop_on_signals() as stop, command_database(settings, waiting=stop) as db:
        run_standalone("sla", SlaService(db, settings).parts, stop, settings, db.url)


@consume_app.command("audit")
def consume_audit() -> None:
    """The audit trail: append hash-chained entries for every case and SLA event."""
    settings = get_settings()
    configure_logging(settings)
    required_brokers(settings, "`casebook run` starts a local broker and the audit trail instead")
    from entrypoints.audit_service import AuditService
    from projections.audit.signing import load_signing_key

    # Here, unlike beside `casebook run`, no signing key is a refusal: a production
    # audit trail without signed checkpoints must not start quietly.
    key = load_signing_key(settings)
    with stop_on_signals() as stop, command_database(settings, waiting=stop) as db:
        service = AuditService(db, settings, signing_key=key)
        run_standalone("audit", service.parts, stop, settings, db.url)
