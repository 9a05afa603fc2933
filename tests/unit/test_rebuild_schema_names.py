"""The schemas a rebuild works in and leaves behind: one pair per rebuild, droppable by name."""

from __future__ import annotations

import time

from casebook.database import parse_database_url
from casebook.settings import Settings
from consumers.rebuild import Rebuild, Tables
from entrypoints.cli.projections import _LEFTOVER
from projections.audit.projection import AuditProjection


def test_rebuilds_begun_within_one_second_get_schemas_of_their_own() -> None:
    db = parse_database_url("postgresql://postgres@127.0.0.1:5432/test")
    settings = Settings(database_url=db.url)

    def begin() -> Rebuild:
        return Rebuild(db, settings, AuditProjection(), Tables(("casebook_audit_entries",)))

    first = begin()
    time.sleep(0.001)  # a later instant, well within the same second
    second = begin()
    assert first.schema != second.schema and first.archive != second.archive
    for schema in (first.schema, first.archive, second.schema, second.archive):
        assert _LEFTOVER.match(schema), schema
    # Leftovers of rebuilds stamped to the second are still recognised.
    assert _LEFTOVER.match("archive_sla_20250101120000")
