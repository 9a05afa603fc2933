"""Cases worked through the HTTP API show in the queue and SLA routes via relay, broker, consumer.

Everything is real: the API over a Casebook on PostgreSQL, the relay, a tansu broker,
and the SLA tracker (consumer, timer, outbox publisher) on their threads.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from casebook.database import Database
from casebook.policy_source import default_policy_text
from domain.values import Role
from entrypoints.broker import Broker
from tests.integration.api_support import open_case, register_acme
from tests.integration.pipeline_support import command, until, whole_system
from tests.kafka import ON_BOTH_BROKERS

# The whole pipeline (API, relay, broker, consumers) over the same SQL on any PostgreSQL;
# the storage layers are proven on both servers, so these run on the default server.
pytestmark = [pytest.mark.integration, ON_BOTH_BROKERS]


def test_the_queue_orders_worked_cases_by_deadline_through_the_whole_pipeline(
    clean_database: Database, kafka_broker: Broker
) -> None:
    with whole_system(clean_database, kafka_broker) as (api, client, _):
        organisation = register_acme(client, api)
        critical, high, low, answered = (open_case(client, api, organisation) for _ in range(4))
        for case_id, severity in ((low, "C"), (high, "B"), (critical, "A"), (answered, "B")):
            command(client, api, f"/cases/{case_id}/severity", {"severity": severity})
        command(client, api, f"/cases/{answered}/responses", {"message_summary": "On it"})
        client.put(
            f"/cases/{high}/agent",
            json={"agent_id": api.principals[Role.AGENT]},
            headers=api.as_(Role.AGENT),
        )

        def queue(**params: str) -> list[str]:
            response = client.get("/queue", params=params, headers=api.as_(Role.AGENT))
            assert response.status_code == 200, response.text
            return [item["case_id"] for item in response.json()["items"]]

        # Nearest deadline first; the answered case has none left, so it comes last.
        assert until(queue, lambda ids: len(ids) == 4 and ids[-1] == answered) == [
            critical,
            high,
            low,
            answered,
        ]
        assert queue(severity="B") == [high, answered]
        assert until(lambda: queue(agent=api.principals[Role.AGENT]), lambda ids: ids) == [high]

        status = client.get(f"/cases/{critical}/sla", headers=api.as_(Role.SUPERVISOR)).json()
        [clock] = status["clocks"]
        assert (clock["metric"], clock["state"], clock["severity"]) == (
            "initial_response",
            "running",
            "A",
        )
        started = datetime.fromisoformat(clock["started_at"])
        assert (datetime.fromisoformat(clock["deadline"]) - started).total_seconds() == 3600
        assert 0 < clock["remaining_business_seconds"] <= 3600
        assert clock["explanation"]["calendar"] == "continuous"
        # The triage clock (A: acme's agreement) started at the opening; the assessment
        # recomputed it.
        assert [h["change"] for h in status["history"]] == ["started", "recomputed"]

        met = until(
            lambda: client.get(f"/cases/{answered}/sla", headers=api.as_(Role.AGENT)).json(),
            lambda body: body["clocks"][0]["state"] == "met",
        )
        assert met["clocks"][0]["remaining_business_seconds"] is None


def test_a_few_seconds_target_turns_at_risk_and_breaches_without_any_event(
    clean_database: Database, kafka_broker: Broker, tmp_path: Path
) -> None:
    policy = tmp_path / "fast.toml"
    policy.write_text(
        default_policy_text()
        .replace('version = "2025.1"', 'version = "fast-1"')
        .replace(
            'targets.B = { initial_response = { business_days = 1 }, calendar = "extended_daily" }',
            'targets.B = { initial_response = { minutes = 0.05 }, calendar = "continuous" }',
        ),
        encoding="utf-8",
    )
    with whole_system(clean_database, kafka_broker, policy_file=policy) as (api, client, settings):
        organisation = register_acme(client, api)
        case_id = open_case(client, api, organisation)
        command(client, api, f"/cases/{case_id}/severity", {"severity": "B"})

        def status() -> dict[str, Any]:
            return client.get(f"/cases/{case_id}/sla", headers=api.as_(Role.AGENT)).json()

        breached = until(
            status, lambda body: body.get("clocks", [{}])[0].get("state") == "breached"
        )
        clock = breached["clocks"][0]
        assert clock["breached_at"] == clock["deadline"]
        assert clock["remaining_business_seconds"] < 0
        changes = [h["change"] for h in breached["history"]]
        assert changes == ["started", "recomputed", "at_risk", "breached"]
        assert breached["history"][2]["at"] == clock["at_risk_at"]

        published = _sla_event_types(kafka_broker, f"{settings.topic_prefix}.sla-events.v1", 4)
        assert published == [
            "casebook.sla.clock_started.v1",
            "casebook.sla.clock_recomputed.v1",
            "casebook.sla.clock_at_risk.v1",
            "casebook.sla.clock_breached.v1",
        ]


def _sla_event_types(broker: Broker, topic: str, expected: int) -> list[str]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    found: list[str] = []
    try:
        deadline_reached = False
        while len(found) < expected and not deadline_reached:
            batch = list(consumer)
            found.extend(dict(r.headers)["ce_type"].decode() for r in batch)
            deadline_reached = not batch
    finally:
        consumer.close()
    return found
