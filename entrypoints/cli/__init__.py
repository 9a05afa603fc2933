"""The `casebook` command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys

import psycopg
import typer
from kafka.errors import KafkaError
from pydantic import ValidationError

from casebook.database import DatabaseUnavailable
from casebook.errors import first_line
from casebook.settings import describe_invalid
from domain.errors import DomainError
from entrypoints.background import OutageTooLong
from entrypoints.cli.audit import audit_app
from entrypoints.cli.audit_evidence import EvidenceRefused
from entrypoints.cli.consume import consume_app
from entrypoints.cli.db import migrate_command
from entrypoints.cli.dlq import DlqRefused, consumers_app, dlq_app
from entrypoints.cli.keys import KeyNotActive, keys_app
from entrypoints.cli.notifications import notifications_app
from entrypoints.cli.policy import policy_app
from entrypoints.cli.privacy import privacy_app
from entrypoints.cli.projections import projections_app
from entrypoints.cli.relay import relay_command
from entrypoints.cli.run import run_command
from entrypoints.cli.schemas import schemas_app
from entrypoints.cli.serve import serve_command
from entrypoints.cli.sla import sla_app
from entrypoints.migrate import MigrationFailed
from messaging.kafka_clients import KafkaMisconfigured, TopicRefused
from privacy.envelope import KeyUnusable
from privacy.master_key import MasterKeyUnavailable
from projections.audit.signing import SigningKeyUnavailable

# Failures of the machinery around the domain: reported in one line, exit code 1.
_OPERATIONAL_ERRORS = (
    DatabaseUnavailable,
    MigrationFailed,
    KeyNotActive,
    DlqRefused,
    EvidenceRefused,
    SigningKeyUnavailable,
    KafkaMisconfigured,
    TopicRefused,
    OutageTooLong,
    MasterKeyUnavailable,
    KeyUnusable,
)

app = typer.Typer(
    name="casebook",
    help="Event-sourced case management for the support desk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sla_app, name="sla")
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.add_typer(schemas_app, name="schemas")
app.add_typer(consume_app, name="consume")
app.add_typer(audit_app, name="audit")
app.add_typer(projections_app, name="projections")
app.add_typer(dlq_app, name="dlq")
app.add_typer(consumers_app, name="consumers")
app.add_typer(notifications_app, name="notifications")
app.add_typer(privacy_app, name="privacy")
app.command("migrate")(migrate_command)
app.command("serve")(serve_command)
app.command("run")(run_command)
app.command("relay")(relay_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; usage and rule errors become one line and exit codes 2 and 1."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="casebook")
    except ValidationError as error:
        # Settings are read inside the commands; an operator fixes the variable named.
        print(f"casebook: error: {describe_invalid(error)}", file=sys.stderr)
        return 2
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        print("casebook: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as error:
        message = error.format_message().replace("Value error, ", "")
        if message:  # empty after `casebook` alone printed its help
            print(f"casebook: error: {message}", file=sys.stderr)
        return error.exit_code
    except (DomainError, *_OPERATIONAL_ERRORS) as error:
        print(f"casebook: error: {error}", file=sys.stderr)
        return 1
    except psycopg.Error as error:
        reason = first_line(error)
        missing_table = isinstance(error, psycopg.errors.UndefinedTable)
        hint = " (run `casebook migrate`?)" if missing_table else ""
        print(f"casebook: error: database: {reason}{hint}", file=sys.stderr)
        return 1
    except KafkaError as error:
        reason = str(error).strip() or type(error).__name__
        print(f"casebook: error: kafka: {reason}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
