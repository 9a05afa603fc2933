"""`casebook audit ...`: what compliance auditors do from a terminal.

Reads of the log and of case history (timeline, state as of, diff, verify, access) live
in `audit_reads`; evidence bundles and checkpoints in `audit_evidence`.
"""

from __future__ import annotations

import typer

from entrypoints.cli import audit_evidence, audit_reads

audit_app = typer.Typer(
    help="Audit trail: timelines, state as of any instant, verification, evidence.",
    no_args_is_help=True,
)
audit_reads.register(audit_app)
audit_evidence.register(audit_app)
