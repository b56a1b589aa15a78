"""`scheduling status` and `GET /ops/partitions` follow a second worker joining and leaving the actors' group."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
from conftest import SECRET, Service, running_dev

from scheduling.core.config import Settings
from scheduling.run.stack import free_port
from scheduling.run.status import collect

PARTITIONS = {0, 1, 2, 3}
#: two workers on a loaded 2-core machine may rebalance a few times before they settle
SETTLE_SECONDS = 180.0
#: between two reports: each one opens Kafka and NATS connections, and the workers need the CPU
POLL_SECONDS = 1.0

Condition = Callable[[dict[str, Any]], bool]


def _status_text(service: Service) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scheduling", "status", "--kafka", service.kafka, "--nats", service.nats],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def _actors(state: dict[str, Any]) -> dict[str, Any]:
    return next(g for g in state["groups"] if g["topic"] == "scheduling-commands")


def _split_between(count: int) -> Condition:
    """The actors' group has `count` members and every partition is owned by exactly one of them, all used."""

    def holds(state: dict[str, Any]) -> bool:
        group = _actors(state)
        members = {m["memberId"] for m in group["members"]}
        owners = [row["owner"] for row in group["partitions"]]
        held = [set(m["partitions"]) for m in group["members"]]
        return (
            len(members) == count
            and set(owners) == members
            and set().union(*held) == PARTITIONS
            and sum(len(h) for h in held) == len(PARTITIONS)
        )

    return holds


async def _wait_for(service: Service, condition: Condition) -> dict[str, Any]:
    """The report (the same `scheduling status --json` prints), polled until `condition` holds."""
    settings = replace(Settings(), kafka_url=service.kafka, nats_url=service.nats, broker_flavour="tansu")
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        state = await collect(settings)
        if condition(state):
            return state
        assert time.monotonic() < deadline, f"condition not met in {SETTLE_SECONDS}s; last status {state}"
        await asyncio.sleep(POLL_SECONDS)


def _second_worker(service: Service, state_dir: str) -> subprocess.Popen[bytes]:
    # not traced by coverage: a duplicate of the measured worker, and tracing would slow its rebalances
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env.update({
        "KAFKA_BROKER_URL": service.kafka, "NATS_URL": service.nats, "DATABASE_URL": service.postgres,
        "SCHEDULING_HTTP_PORT": str(free_port()), "SCHEDULING_JWT_SECRET": SECRET, "SCHEDULING_BROKER": "tansu",
        "SCHEDULING_PARTITIONS": "4", "SCHEDULING_STATE_DIR": state_dir,
    })  # fmt: skip
    log = open(service.data_dir / "worker-2.log", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "scheduling", "worker"], env=env, stdout=log, stderr=log)


async def _ops(service: Service) -> dict[str, Any]:
    headers = service.auth(scope="scheduling:admin")
    async with aiohttp.ClientSession(service.http) as http, http.get("/ops/partitions", headers=headers) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_status_shows_the_partitions_split_when_a_second_worker_joins_and_whole_when_it_leaves() -> None:
    with running_dev() as service:
        alone = await _wait_for(service, _split_between(1))
        assert all(w["tablesRecovered"] for w in alone["workers"])

        second = _second_worker(service, tempfile.mkdtemp(prefix="scheduling-worker-2-"))
        try:
            both = await _wait_for(service, _split_between(2))
            assert len({row["owner"] for row in _actors(both)["partitions"]}) == 2
            text = await asyncio.to_thread(_status_text, service)
            assert "group scheduling (scheduling-commands): Stable, 2 member(s)" in text, text
            for member in _actors(both)["members"]:
                assert member["memberId"] in text
            assert len(_actors(await _ops(service))["members"]) == 2
        finally:
            second.terminate()
            await asyncio.to_thread(second.wait, 60)
        await _wait_for(service, _split_between(1))
