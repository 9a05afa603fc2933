"""An organisation's evidence bundle streams from a real API process in bounded memory."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.keys import KeyRole, KeyStore
from bench.bundle import api_worker
from bench.memory import PeakRss
from bench.organisation import AuditedOrganisation
from casebook.database import Database
from entrypoints.migrate import apply_migrations
from projections.audit.bundle import verify_bundle
from tests.integration.api_support import bearer
from tests.integration.conftest import DatabaseFactory
from tests.integration.evidence_support import audit_many_cases
from tests.integration.sla_support import rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CASES = 10_000
RSS_GROWTH_LIMIT = 200 * 2**20
KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def large(new_database: DatabaseFactory) -> tuple[Database, AuditedOrganisation]:
    """A database whose audit log holds one organisation of CASES cases, checkpointed."""
    database = new_database()
    apply_migrations(database)
    return database, audit_many_cases(database, CASES, KEY)


def test_an_organisation_bundle_of_ten_thousand_cases_streams_in_bounded_memory(
    large: tuple[Database, AuditedOrganisation], tmp_path: Path
) -> None:
    database, organisation = large
    token = KeyStore.for_database(database).create(KeyRole.AUDITOR).token
    out = tmp_path / "organisation.zip"
    with (
        api_worker(database, KEY) as (base, server),
        httpx.Client(base_url=base, headers=bearer(token), timeout=300) as http,
    ):
        # A bundle first (of a case without entries): every module an export uses is
        # imported and the read pool connected before the measure starts.
        assert http.get(f"/audit/cases/{organisation.lived_case}/evidence").status_code == 200
        asked = time.monotonic()
        first_byte = None
        with (
            PeakRss(server.pid) as rss,
            http.stream(
                "GET", f"/audit/organisations/{organisation.organisation_id}/evidence"
            ) as response,
            out.open("wb") as file,
        ):
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                first_byte = first_byte or time.monotonic() - asked
                file.write(chunk)
        took = time.monotonic() - asked
    print(
        f"\n{organisation.entries} entries of {CASES} cases: {out.stat().st_size / 2**20:.0f} MiB "
        f"in {took:.1f} s, first byte after {first_byte:.1f} s; API process RSS "
        f"{rss.before / 2**20:.0f} MiB before, peak growth {rss.growth_mib:.0f} MiB"
    )
    assert rss.peak - rss.before < RSS_GROWTH_LIMIT
    assert first_byte is not None and first_byte < took / 2  # it streams
    verified = verify_bundle(out.read_bytes(), KEY.public_key())
    assert (verified.entries, verified.uncovered) == (organisation.entries, 0)
    assert verified.chains == 2 * CASES + 1  # each case's case and SLA chains, and its own


def open_exports(database: Database) -> int:
    """Transactions other than this one that are open or reading audit entries."""
    [[count]] = rows(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND (state LIKE 'idle in transaction%%' "
        "OR (state = 'active' AND query LIKE '%%casebook_audit_entries%%'))",
    )
    return int(count)


def test_downloads_cut_short_give_their_snapshot_and_connection_back(
    large: tuple[Database, AuditedOrganisation],
) -> None:
    database, organisation = large
    token = KeyStore.for_database(database).create(KeyRole.AUDITOR).token
    path = f"/audit/organisations/{organisation.organisation_id}/evidence"
    with api_worker(database, KEY) as (base, _):
        for _ in range(5):  # more than the read pool holds
            with (
                httpx.Client(base_url=base, headers=bearer(token), timeout=60) as http,
                http.stream("GET", path) as response,
            ):
                assert response.status_code == 200
                next(response.iter_raw())
        deadline = time.monotonic() + 15
        while open_exports(database) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open_exports(database) == 0
        with httpx.Client(base_url=base, headers=bearer(token), timeout=10) as http:
            lived = http.get(f"/audit/cases/{organisation.lived_case}/evidence")
            assert lived.status_code == 200
