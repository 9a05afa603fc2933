"""Deadlines that can be re-proven (issue 16): the recorded proof is what the API explains,
`casebook sla verify` re-proves it, `casebook sla provisional` lists the deadlines that
rest on an estimated holiday schedule and `casebook sla refresh` recomputes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient

from casebook.application import Casebook
from casebook.database import Database
from casebook.policy_source import load_policy
from casebook.settings import Settings
from domain.values import Category, Role, Severity
from projections.sla.proofs import verify
from projections.sla.targets import TargetBook
from tests.integration.api_support import Api, open_case, register_acme, running_api
from tests.integration.conftest import ON_BOTH_SERVERS, CliRunner
from tests.integration.sla_support import assess, project, rows, stored_envelopes
from tests.integration.workload_support import store_cases
from tests.integration.write_side import open_request, register_organisation

pytestmark = [pytest.mark.integration, ON_BOTH_SERVERS]

# Thursday 31 December 2026, 17:00 in Shanghai: a presales or billing business day from
# here runs into 2027, whose official China schedule the pinned `holidays` lacks.
NEW_YEARS_EVE = datetime(2026, 12, 31, 9, tzinfo=UTC)
# Shifts the first recorded span's end in the stored proof (the tampering under test).
TAMPER_SPAN = (
    "UPDATE casebook_sla_clocks SET proof = jsonb_set(proof, '{spans,0,end}', "
    "to_jsonb('2020-01-01T00:00:00Z'::text)) WHERE case_id = %s AND metric = 'initial_response'"
)


@pytest.fixture
def casebook(clean_database: Database) -> Iterator[Casebook]:
    casebook = Casebook.connect(
        clean_database, Settings(database_url=clean_database.url), clock=lambda: NEW_YEARS_EVE
    )
    yield casebook
    casebook.close()


def tracked_cases(casebook: Casebook, database: Database) -> dict[Category, UUID]:
    """A presales, a billing and a technical case of a customer in China, assessed B."""
    organisation = register_organisation(casebook)
    cases = {kind: open_request(casebook, organisation, category=kind) for kind in Category}
    for case_id in cases.values():
        assess(casebook, case_id, Severity.B)
    project(database, stored_envelopes(casebook))
    return cases


def execute(database: Database, statement: str, *params: object) -> None:
    with psycopg.connect(database.url) as conn:
        conn.execute(statement, params)


def outbox(database: Database, case_id: UUID) -> list[tuple[int, str, dict[str, object]]]:
    return [
        (sequence, kind, payload)
        for sequence, kind, payload in rows(
            database,
            "SELECT sequence, type, payload FROM casebook_sla_outbox WHERE subject = %s "
            "ORDER BY sequence",
            str(case_id),
        )
    ]


def test_verify_finds_no_difference_until_a_recorded_span_is_tampered_with(
    casebook: Casebook, clean_database: Database, cli: CliRunner
) -> None:
    cases = tracked_cases(casebook, clean_database)
    result = cli("sla", "verify", "--all", db=clean_database)
    assert result.code == 0, result.stderr
    assert result.stdout == "3 clocks verified: no difference\n"

    tampered = cases[Category.BILLING]
    execute(clean_database, TAMPER_SPAN, tampered)
    result = cli("sla", "verify", "--all", db=clean_database)
    assert result.code == 1
    assert result.stdout.startswith(f"case {tampered} initial_response: differs\n  spans: ")
    assert result.stdout.endswith("3 clocks verified: 1 differ\n")
    one = cli("sla", "verify", str(tampered), db=clean_database)
    assert one.code == 1 and "1 clocks verified: 1 differ" in one.stdout
    other = cli("sla", "verify", str(cases[Category.TECHNICAL]), db=clean_database)
    assert other.code == 0 and other.stdout == "1 clocks verified: no difference\n"


def test_verify_reports_its_progress_on_long_runs(
    casebook: Casebook, clean_database: Database
) -> None:
    tracked_cases(casebook, clean_database)
    heard: list[int] = []
    with psycopg.connect(clean_database.url) as conn:
        found = verify(conn, TargetBook([load_policy()]), progress=heard.append, every=2)
    assert (found.clocks, heard, found.differing) == (3, [2], [])


def test_verify_refuses_an_unknown_case_and_a_missing_choice_in_one_line(
    clean_database: Database, cli: CliRunner
) -> None:
    unknown = "00000000-0000-0000-0000-000000000001"
    result = cli("sla", "verify", unknown, db=clean_database)
    assert result.code == 1 and result.stdout == ""
    assert result.stderr == f"casebook: error: case {unknown} is not tracked by the SLA tracker\n"
    neither = cli("sla", "verify", db=clean_database)
    assert neither.code == 2
    assert neither.stderr.count("\n") == 1 and "give a CASE or --all" in neither.stderr


def test_provisional_lists_the_open_clocks_on_an_estimated_schedule_presales_included(
    casebook: Casebook, clean_database: Database, cli: CliRunner
) -> None:
    cases = tracked_cases(casebook, clean_database)
    result = cli("sla", "provisional", db=clean_database)
    assert result.code == 0, result.stderr
    listed = sorted(line.split()[0] for line in result.stdout.splitlines())
    assert listed == sorted(str(cases[kind]) for kind in (Category.PRESALES, Category.BILLING))
    assert all(line.endswith(" years 2027") for line in result.stdout.splitlines())
    assert "initial_response running deadline 2027-01-04T09:00:00+00:00" in result.stdout


def test_refresh_publishes_a_recomputation_for_a_moved_deadline_only(
    casebook: Casebook, clean_database: Database, cli: CliRunner
) -> None:
    """The installed `holidays` cannot be swapped inside a test, so "recorded with older
    calendar data" is made by hand: the presales clock's recorded deadline and at-risk
    instant are moved a day earlier (and its proof's data hash changed), as an older
    estimate of 2027 could have put them. The billing clock stays as recorded, except
    that its proof is removed (a clock recorded before proofs), and so is the technical
    clock's, which is not provisional: refresh re-proves both without an event."""
    cases = tracked_cases(casebook, clean_database)
    moved, kept = cases[Category.PRESALES], cases[Category.BILLING]
    plain = cases[Category.TECHNICAL]
    right = rows(
        clean_database, "SELECT deadline FROM casebook_sla_clocks WHERE case_id = %s", moved
    )
    execute(
        clean_database,
        "UPDATE casebook_sla_clocks SET deadline = deadline - interval '1 day', "
        "at_risk_at = at_risk_at - interval '1 day', "
        "proof = jsonb_set(proof, '{data_sha256}', '\"older\"') WHERE case_id = %s",
        moved,
    )
    for unproven in (kept, plain):
        execute(
            clean_database,
            "UPDATE casebook_sla_clocks SET proof = NULL WHERE case_id = %s",
            unproven,
        )
    before_moved, before_kept = outbox(clean_database, moved), outbox(clean_database, kept)
    before_plain = outbox(clean_database, plain)

    result = cli("sla", "refresh", db=clean_database)
    assert result.code == 0, result.stderr
    assert result.stdout.endswith("1 deadline(s) moved, 2 re-proven unmoved, 0 unchanged\n")
    assert f"{moved} initial_response: deadline " in result.stdout

    after = outbox(clean_database, moved)
    assert after[: len(before_moved)] == before_moved
    (sequence, kind, payload), *more = after[len(before_moved) :]
    assert not more
    assert sequence == before_moved[-1][0] + 1
    assert kind == "casebook.sla.clock_recomputed.v1"
    assert str(payload["reason"]).startswith("calendar data updated (holidays ")
    proof = payload["proof"]
    assert isinstance(proof, dict) and proof["provisional_years"] == [2027]
    assert datetime.fromisoformat(str(payload["deadline"])) == right[0][0]
    assert outbox(clean_database, kept) == before_kept
    (recorded,) = rows(
        clean_database, "SELECT proof FROM casebook_sla_clocks WHERE case_id = %s", kept
    )
    assert recorded[0] is not None and recorded[0]["provisional_years"] == [2027]
    assert outbox(clean_database, plain) == before_plain
    ((proven,),) = rows(
        clean_database, "SELECT proof FROM casebook_sla_clocks WHERE case_id = %s", plain
    )
    assert proven is not None and proven["provisional_years"] == []

    again = cli("sla", "refresh", db=clean_database)
    assert again.stdout.endswith("0 deadline(s) moved, 0 re-proven unmoved, 2 unchanged\n")
    assert cli("sla", "verify", "--all", db=clean_database).code == 0


@pytest.fixture
def api(clean_database: Database) -> Iterator[Api]:
    with running_api(clean_database) as api:
        yield api


def test_the_case_sla_explanation_reads_the_recorded_proof(
    api: Api, clean_database: Database
) -> None:
    with TestClient(api.app) as client:
        case_id = open_case(client, api, register_acme(client, api), category="billing")
        response = client.post(
            f"/cases/{case_id}/severity", json={"severity": "B"}, headers=api.as_(Role.AGENT)
        )
        assert response.status_code == 200, response.text
        project(clean_database, stored_envelopes(api.casebook))

        def explanation() -> dict[str, object]:
            response = client.get(f"/cases/{case_id}/sla", headers=api.as_(Role.AGENT))
            assert response.status_code == 200, response.text
            body = response.json()["clocks"][0]["explanation"]
            assert isinstance(body, dict)
            return body

        recorded = explanation()
        ((proof,),) = rows(clean_database, "SELECT proof FROM casebook_sla_clocks")
        assert recorded["recorded"] is True
        assert recorded["policy_version"] == proof["policy_version"]
        assert recorded["data_sha256"] == proof["data_sha256"]
        assert str(recorded["calendar_source"]).startswith("holidays ")

        execute(clean_database, TAMPER_SPAN, case_id)
        spans = explanation()["spans"]
        assert isinstance(spans, list)
        assert spans[0]["end"] == "2020-01-01T00:00:00Z"  # what was recorded, however wrong

        execute(clean_database, "UPDATE casebook_sla_clocks SET proof = NULL")
        recomputed = explanation()
        assert recomputed["recorded"] is False and recomputed["policy_version"] is None
        assert recomputed["spans"] == recorded["spans"]


@pytest.mark.slow
def test_verify_all_over_a_10000_event_history_then_a_tampered_span(
    casebook: Casebook, clean_database: Database, cli: CliRunner
) -> None:
    store_cases(casebook, cases=500, events_per_case=20)
    envelopes = stored_envelopes(casebook)
    assert len(envelopes) >= 10_000
    for first in range(0, len(envelopes), 1000):
        project(clean_database, envelopes[first : first + 1000])
    result = cli("sla", "verify", "--all", db=clean_database)
    assert result.code == 0, result.stdout[-2000:]
    assert result.stdout.endswith(": no difference\n")
    ((clocks,),) = rows(clean_database, "SELECT count(*) FROM casebook_sla_clocks")
    assert result.stdout == f"{clocks} clocks verified: no difference\n"

    ((case_id,),) = rows(
        clean_database,
        "SELECT case_id FROM casebook_sla_clocks WHERE metric = 'initial_response' "
        "AND proof IS NOT NULL ORDER BY case_id LIMIT 1",
    )
    execute(clean_database, TAMPER_SPAN, case_id)
    result = cli("sla", "verify", "--all", db=clean_database)
    assert result.code == 1
    assert result.stdout.startswith(f"case {case_id} initial_response: differs\n")
    assert result.stdout.endswith(f"{clocks} clocks verified: 1 differ\n")
    assert json.dumps(str(case_id)) not in result.stderr  # the report is on stdout
