"""Caller verification events on the case-events topic and in the audit trail.

Every outcome (requested, verified, failed, locked, expired, used) is published keyed by
the organisation with contiguous sequence numbers, and audited; neither the code nor
its digest reaches a topic record or an audit entry.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest

from casebook.database import Database
from domain.organisations.verification import code_digest
from entrypoints.broker import Broker
from relay.cloudevents import topic_name
from tests.integration.api_support import register_acme
from tests.integration.pipeline_support import until, whole_system, with_audit
from tests.integration.relay_support import headers
from tests.integration.sla_support import rows
from tests.integration.topic_support import consume_all
from tests.integration.verification_support import (
    Clock,
    confirm,
    last_code,
    open_for_caller,
    request_code,
    wrong,
)
from tests.kafka import ON_BOTH_BROKERS

pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]

OUTCOMES = {
    "casebook.organisation.caller_verification_requested.v1": 3,
    "casebook.organisation.caller_verified.v1": 1,
    "casebook.organisation.caller_verification_failed.v1": 6,
    "casebook.organisation.caller_verification_locked.v1": 1,
    "casebook.organisation.caller_verification_expired.v1": 1,
    "casebook.organisation.caller_verification_used.v1": 1,
}


def test_verification_outcomes_are_published_in_sequence_and_audited_without_codes(
    clean_database: Database, kafka_broker: Broker
) -> None:
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    with whole_system(clean_database, kafka_broker, clock) as (api, client, settings):
        with with_audit(clean_database, settings):
            organisation_id = register_acme(client, api)
            secrets: list[str] = []

            def send() -> tuple[str, str]:
                verification_id = request_code(client, api, organisation_id).json()[
                    "verification_id"
                ]
                code = last_code(clean_database, organisation_id)
                secrets.extend([code, code_digest(UUID(verification_id), code)])
                return verification_id, code

            verified, code = send()
            confirm(client, api, organisation_id, verified, wrong(code))
            assert confirm(client, api, organisation_id, verified, code).status_code == 200
            assert open_for_caller(client, api, organisation_id, verified).status_code == 201
            locked, code = send()
            for _ in range(5):
                confirm(client, api, organisation_id, locked, wrong(code))
            late, code = send()
            clock.advance(minutes=11)
            assert confirm(client, api, organisation_id, late, code).status_code == 409

            version = api.casebook.get_organisation(UUID(organisation_id)).version
            audited = until(
                lambda: rows(
                    clean_database,
                    "SELECT event_type, changes, actor_id, channel FROM casebook_audit_entries"
                    " WHERE subject = %s ORDER BY seq",
                    organisation_id,
                ),
                lambda found: len(found) == version,
                timeout=60,
            )
        records = [
            r
            for r in consume_all(
                settings.kafka_bootstrap_servers or "", topic_name(settings.topic_prefix)
            )
            if r.key == organisation_id.encode()
        ]

    published = [headers(r) for r in records]
    assert [int(h["ce_sequence"]) for h in published] == list(range(1, version + 1))
    types = [h["ce_type"] for h in published]
    assert {t: types.count(t) for t in OUTCOMES} == OUTCOMES
    assert [entry[0] for entry in audited] == types
    assert {entry[3] for entry in audited[1:]} == {"phone"}, "verified during the call"
    text = json.dumps([r.value.decode() for r in records] + published) + json.dumps(
        audited, default=str
    )
    assert "code_digest" not in text
    for secret in secrets:
        assert secret not in text
    with psycopg.connect(clean_database.url) as conn:
        waiting = conn.execute("SELECT count(*) FROM casebook_consumer_waiting").fetchone()
        dead = conn.execute("SELECT count(*) FROM casebook_consumer_dead_letters").fetchone()
    assert (waiting, dead) == ((0,), (0,)), "no sequence gap held, nothing dead-lettered"
