"""Every metric the dashboard and the alert rules query is on the live /metrics of `scheduling dev`: the
worker's HTTP view, and the bridge's and the projector's metrics servers (`<data-dir>/ready.env`), each
serving what its own process counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from conftest import unique
from prometheus_client.parser import text_string_to_metric_families
from support.client import eventually
from support.dashboards import RECORDED_BY, exposed_names, used_metrics
from support.metrics import scrape, value

from scheduling.core.wire import DecisionRecord

DECISIONS = "scheduling-decisions"
#: the decision record's type, seen only here: its dead-letter count is this test's own
PROBE_TYPE = "metrics.dead-letter-probe"


def _endpoints(service: Any) -> dict[str, str]:
    """Each role's metrics server, as `scheduling dev` announces them for a second shell."""
    lines = (service.data_dir / "ready.env").read_text().splitlines()
    ready = dict(line.split("=", 1) for line in lines if line)
    return {"worker": service.http, "bridge": ready["BRIDGE_METRICS"], "projector": ready["PROJECTOR_METRICS"]}


async def test_every_metric_of_the_dashboard_and_alerts_is_exposed(service: Any) -> None:
    endpoints = _endpoints(service)
    assert len(set(endpoints.values())) == 3, endpoints
    exposed = {role: exposed_names(text_string_to_metric_families(await scrape(url))) for role, url in
               endpoints.items()}  # fmt: skip
    used = used_metrics()
    union = set().union(*exposed.values())
    assert used and not used - union, f"on no role's /metrics: {sorted(used - union)}"
    for name, roles in RECORDED_BY.items():
        for role in roles:
            assert name in exposed[role], f"{name} is recorded by the {role} but not on its /metrics"


async def test_dead_letters_and_parked_records_are_counted_on_the_metrics_of_the_roles_that_set_them_aside(
    service: Any, producer: AIOKafkaProducer
) -> None:
    endpoints = _endpoints(service)
    parked = "scheduling_parked_records_total"
    consumer = {"bridge": "relay", "projector": "projector"}
    parked_before = {role: await value(endpoints[role], parked, consumer=consumer[role], reason="unreadable")
                     for role in consumer}  # fmt: skip
    # a refusal nobody was answered about: the relay publishes it on scheduling.dlq.<type> and counts it
    letter = DecisionRecord(
        delivery_id=unique("d"), command_id=unique("c"), type=PROBE_TYPE, source="nats",
        tenant=unique("t-metrics"), caller="metrics-test", reply={"ok": False}, outcome="VALIDATION_FAILED",
        decided_at=datetime.now(UTC), dead_letter=True, command={"probe": True},
    )  # fmt: skip
    await producer.send_and_wait(DECISIONS, letter.encode(), key=b"metrics-probe")
    # and a record neither the relay nor the projector can read: each parks it on scheduling-dead-letters
    await producer.send_and_wait(DECISIONS, b"{{{ not a decision record", key=b"metrics-probe")

    async def dead_lettered() -> float:
        return await value(endpoints["bridge"], "scheduling_dead_letters_total", type=PROBE_TYPE)

    assert await eventually(dead_lettered, within=30, interval=0.5) >= 1
    for role, name in consumer.items():

        async def counted(role: str = role, name: str = name) -> bool:
            return await value(endpoints[role], parked, consumer=name, reason="unreadable") > parked_before[role]

        await eventually(counted, within=30, interval=0.5)
    # counted where they happen, not by the worker (its view serves only what its own process counts)
    assert await value(service.http, "scheduling_dead_letters_total", type=PROBE_TYPE) == 0
