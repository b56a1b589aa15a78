"""`scheduling status` and `GET /ops/partitions` follow a second worker joining and leaving the actors' group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from conftest import SECRET, Service, running_dev

from scheduling.run.stack import free_port

PARTITIONS = {0, 1, 2, 3}


def _status(service: Service, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scheduling", "status", "--kafka", service.kafka, "--nats", service.nats, *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def _actors(state: dict[str, Any]) -> dict[str, Any]:
    return next(g for g in state["groups"] if g["topic"] == "scheduling-commands")


def _split_between(count: int) -> Callable[[dict[str, Any]], bool]:
    """The actors' group has `count` members and every partition is owned by one of them, all of them used."""

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


def _wait_for(service: Service, condition: Callable[[dict[str, Any]], bool], within: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        state: dict[str, Any] = json.loads(_status(service, "--json"))
        if condition(state):
            return state
        assert time.monotonic() < deadline, f"condition not met in {within}s; last status {state}"


def _second_worker(service: Service, state_dir: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BROKER_URL": service.kafka, "NATS_URL": service.nats, "DATABASE_URL": service.postgres,
        "SCHEDULING_HTTP_PORT": str(free_port()), "SCHEDULING_JWT_SECRET": SECRET, "SCHEDULING_BROKER": "tansu",
        "SCHEDULING_PARTITIONS": "4", "SCHEDULING_STATE_DIR": state_dir,
    }  # fmt: skip
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
        alone = _wait_for(service, _split_between(1))
        assert all(w["tablesRecovered"] for w in alone["workers"])

        second = _second_worker(service, tempfile.mkdtemp(prefix="scheduling-worker-2-"))
        try:
            both = _wait_for(service, _split_between(2))
            owners = {row["owner"] for row in _actors(both)["partitions"]}
            assert len(owners) == 2
            text = _status(service)
            assert "scheduling (scheduling-commands): Stable, 2 member(s)" in text, text
            for member in _actors(both)["members"]:
                assert member["memberId"] in text
            ops = await _ops(service)
            assert len(_actors(ops)["members"]) == 2
        finally:
            second.terminate()
            second.wait(60)
        _wait_for(service, _split_between(1))
