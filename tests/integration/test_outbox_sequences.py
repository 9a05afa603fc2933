"""Each key's outbox rows are numbered 1, 2, ... with no gaps: what `ce_sequence` carries on
the SLA and checkpoint topics, so a reader tells a lost record from a normal one."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from domain.values import Severity
from entrypoints.migrate import MIGRATIONS_DIR, apply_migrations
from projections.sla import store
from projections.sla.timer import SlaTimer
from tests.integration.conftest import DatabaseFactory
from tests.integration.sla_support import assess, project, rows, stored_envelopes
from tests.integration.write_side import open_request, register_organisation

pytestmark = pytest.mark.integration

# Monday 2025-03-03 10:00 Shanghai.
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
LATE = START + timedelta(days=5)


@pytest.fixture
def casebook(clean_database: Database) -> Iterator[Casebook]:
    casebook = Casebook.connect(
        clean_database, Settings(database_url=clean_database.url), clock=lambda: START
    )
    yield casebook
    casebook.close()


def sequences(database: Database) -> dict[str, list[int]]:
    """Each subject's outbox sequences, in the order the publisher sends them (by id)."""
    found: dict[str, list[int]] = {}
    for subject, sequence in rows(
        database, "SELECT subject, sequence FROM casebook_sla_outbox ORDER BY id"
    ):
        found.setdefault(subject, []).append(sequence)
    return found


def test_the_projection_and_the_timer_number_each_cases_sla_events_one_by_one(
    casebook: Casebook, clean_database: Database
) -> None:
    organisation = register_organisation(casebook)
    cases = [open_request(casebook, organisation) for _ in range(3)]
    for case_id in cases:
        assess(casebook, case_id, Severity.B)
    project(clean_database, stored_envelopes(casebook))
    with psycopg.connect(clean_database.url) as conn:
        assert SlaTimer(clean_database.url, clock=lambda: LATE).tick(conn) == 6
    project(clean_database, stored_envelopes(casebook))  # again: nothing new, no number used
    # Triage start, recomputed by the assessment, at risk, breached.
    assert sequences(clean_database) == {str(case_id): [1, 2, 3, 4] for case_id in cases}


def test_a_timer_tick_waits_for_another_writer_of_the_case_and_numbers_after_it(
    casebook: Casebook, clean_database: Database
) -> None:
    organisation = register_organisation(casebook)
    case = open_request(casebook, organisation)
    assess(casebook, case, Severity.B)
    project(clean_database, stored_envelopes(casebook))
    case_id = str(case)
    ticked: list[int] = []

    def tick() -> None:
        with psycopg.connect(clean_database.url) as conn:
            ticked.append(SlaTimer(clean_database.url, clock=lambda: LATE).tick(conn))

    with psycopg.connect(clean_database.url) as writer:
        # Another writer of the case, mid-transaction: it holds the case's numbering lock
        # and has written its next row, not yet committed.
        with writer.cursor() as cursor:
            store.lock_outbox_subjects(cursor, [case_id])
        writer.execute(
            "INSERT INTO casebook_sla_outbox (event_id, type, subject, time, payload, sequence) "
            "SELECT 'other-writer', 'casebook.sla.clock_recomputed.v1', %s, now(), '{}', "
            "max(sequence) + 1 FROM casebook_sla_outbox WHERE subject = %s",
            (case_id, case_id),
        )
        thread = threading.Thread(target=tick)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the timer numbered without waiting for the other writer"
        writer.commit()
        thread.join(timeout=20)
    assert ticked == [2]
    assert sequences(clean_database) == {case_id: [1, 2, 3, 4, 5]}
    [(last_type,)] = rows(
        clean_database,
        "SELECT type FROM casebook_sla_outbox WHERE subject = %s AND sequence = 5",
        case_id,
    )
    assert last_type == "casebook.sla.clock_breached.v1"


def test_a_timer_tick_passes_by_the_clocks_a_consumer_batch_holds_and_takes_them_after(
    casebook: Casebook, clean_database: Database
) -> None:
    # A batch reads a case's clocks and saves them later in its transaction: a tick that
    # changed them in between would be overwritten by the batch's older copy.
    organisation = register_organisation(casebook)
    case = open_request(casebook, organisation)
    assess(casebook, case, Severity.B)
    project(clean_database, stored_envelopes(casebook))
    timer = SlaTimer(clean_database.url, clock=lambda: LATE)

    with psycopg.connect(clean_database.url) as batch:
        views = store.load_views(batch, [str(case)])  # what the consumer does first
        assert views[str(case)].clocks
        with psycopg.connect(clean_database.url) as conn:
            assert timer.tick(conn) == 0  # the held clocks are passed by, not waited on
        batch.commit()

    with psycopg.connect(clean_database.url) as conn:
        assert timer.tick(conn) == 2  # at risk, then breached
    assert sequences(clean_database) == {str(case): [1, 2, 3, 4]}


def test_one_number_twice_for_a_case_is_refused(clean_database: Database) -> None:
    insert = (
        "INSERT INTO casebook_sla_outbox (event_id, type, subject, time, payload, sequence) "
        "VALUES (%s, 'casebook.sla.clock_started.v1', 'case-1', now(), '{}', 1)"
    )
    with psycopg.connect(clean_database.url) as conn:
        conn.execute(insert, ("first",))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("second",))


def test_the_migration_numbers_existing_rows_per_subject_and_translates_consumer_positions(
    new_database: DatabaseFactory, tmp_path: Path
) -> None:
    db = new_database()
    before = tmp_path / "before"
    before.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) < 14:
            shutil.copy(path, before / path.name)
    apply_migrations(db, before)
    with psycopg.connect(db.url) as conn:
        for event_id, subject in (("a1", "A"), ("b1", "B"), ("a2", "A"), ("a3", "A"), ("b2", "B")):
            conn.execute(
                "INSERT INTO casebook_sla_outbox (event_id, type, subject, time, payload) "
                "VALUES (%s, 't', %s, now(), '{}')",
                (event_id, subject),
            )
        for number in (1, 2):
            conn.execute(
                "INSERT INTO casebook_audit_checkpoint_outbox (event_id, type, subject, time, "
                "payload) VALUES (%s, 't', 'audit-log', now(), '{}')",
                (f"checkpoint:{number}",),
            )
        # The audit group applied A up to its third row (outbox id 4) and B's first (id 2).
        conn.execute(
            "INSERT INTO casebook_consumer_sequences (consumer_group, subject, sequence) "
            "VALUES ('audit', 'x.sla-events.v1|A', 4), ('audit', 'x.sla-events.v1|B', 2), "
            "('audit', 'x.case-events.v1|A', 4)"
        )
    apply_migrations(db)
    assert rows(db, "SELECT event_id, sequence FROM casebook_sla_outbox ORDER BY id") == [
        ("a1", 1), ("b1", 1), ("a2", 2), ("a3", 3), ("b2", 2),
    ]  # fmt: skip
    assert rows(db, "SELECT sequence FROM casebook_audit_checkpoint_outbox ORDER BY id") == [
        (1,),
        (2,),
    ]
    assert rows(db, "SELECT subject, sequence FROM casebook_consumer_sequences ORDER BY 1") == [
        ("x.case-events.v1|A", 4),
        ("x.sla-events.v1|A", 3),
        ("x.sla-events.v1|B", 1),
    ]
    with psycopg.connect(db.url) as conn:
        conn.execute((MIGRATIONS_DIR / "0014_outbox_sequences.rollback.sql").read_text())
    assert rows(db, "SELECT subject, sequence FROM casebook_consumer_sequences ORDER BY 1") == [
        ("x.case-events.v1|A", 4),
        ("x.sla-events.v1|A", 4),
        ("x.sla-events.v1|B", 2),
    ]
