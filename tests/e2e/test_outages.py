"""Roles survive their dependencies going away, and readiness tells the truth meanwhile.

These tests run their own `scheduling dev` (they stop NATS, PostgreSQL and a role's process):
- a projector that makes no progress while it has lag turns /readyz 503, and 200 once it moves;
- NATS, then PostgreSQL, is down for 10 s under a booking load: afterwards every role is the same
  process as before (no supervisor restarted one), every booking was answered, nothing was lost or doubled.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import nats
import psutil
import pytest
from conftest import Service, running_dev, unique
from support.client import Client, eventually, schedule_body

#: how long a partition with lag may stand still before /readyz says so (seconds; 30 by default)
STALL_SECONDS = "3"
OUTAGE = 10.0  # seconds a dependency stays down: the scenario of the issue, not a synchronisation
ROLES = ("worker", "bridge", "projector")


@pytest.fixture(scope="module")
def own() -> Iterator[tuple[Service, list[subprocess.Popen[bytes]]]]:
    restarted: list[subprocess.Popen[bytes]] = []
    try:
        with running_dev(SCHEDULING_STALL_SECONDS=STALL_SECONDS) as started:
            yield started, restarted
    finally:
        for process in restarted:
            process.kill()
            process.wait(10)


def _dependency(service: Service, name: str) -> psutil.Process:
    """The embedded nats-server or PostgreSQL postmaster started by `scheduling dev`."""
    for child in psutil.Process(service.pid).children():
        if child.name() == name:
            return child
    raise LookupError(name)


async def _readyz(client: Client) -> tuple[int, Any]:
    status, body, _ = await client.get("/readyz", headers={})
    return status, body


async def test_readyz_is_503_while_a_partition_is_stalled_and_200_once_it_moves(own: Any) -> None:
    service, _ = own
    projector = service.role("projector")
    async with Client(service) as client:
        assert (await _readyz(client))[0] == 200
        projector.suspend()
        try:
            for _ in range(4):  # fire-and-forget: decided by the actors, then waiting for the projector
                body = schedule_body(unique("Practitioner/stall"), "2027-10-04T00:00:00Z", "2027-10-05T00:00:00Z")
                await client.publish("schedule.create", body)

            async def stalled() -> Any:
                status, body = await _readyz(client)
                return status == 503 and body["checks"]["progress"] is False and body["stalled"]

            names = await eventually(stalled, within=60, interval=0.5)
            assert all(name.startswith("scheduling-projector/") for name in names), names
            async with client.http.get("/metrics") as response:  # type: ignore[union-attr]
                text = await response.text()
            assert 'scheduling_partition_stalled_seconds{group="scheduling-projector"' in text
        finally:
            projector.resume()
        await eventually(lambda: _ready(client), within=60, interval=0.5)


async def _ready(client: Client) -> bool:
    return (await _readyz(client))[0] == 200


async def _book_until_answered(nc: Any, service: Service, slot_id: str, patient: str, key: str) -> dict[str, Any]:
    """What a careful client does: retry with the same idempotency key until it gets an answer."""
    body = json.dumps({"slotId": slot_id, "patientId": patient}).encode()
    pause = 0.2
    while True:
        try:
            headers = {**service.auth(), "Nats-Msg-Id": key}
            msg = await nc.request("scheduling.cmd.appointment.book", body, timeout=3, headers=headers)
            reply: dict[str, Any] = json.loads(msg.data)
            if reply["ok"] or reply["error"]["code"] != "UNAVAILABLE":
                return reply
        except nats.errors.Error:
            pass  # no answer (NATS or a role away): the same key again, after a pause
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)


async def _under_outage(service: Service, restarted: list[Any], dependency: str, stop_signal: int) -> None:
    pids = {role: service.role(role).pid for role in ROLES}
    async with Client(service) as client:
        body = schedule_body(unique("Practitioner/outage"), "2027-10-11T00:00:00Z", "2027-10-12T00:00:00Z",
                             days=("mon",), window=("08:00", "14:00"))  # fmt: skip
        schedule = await client.ok("schedule.create", body)
        status, page, _ = await client.get(f"/schedules/{schedule['id']}/slots", limit="100")
        slots = [s["id"] for s in page["data"]][:20]
        patient, run = unique("pat-outage"), uuid.uuid4().hex
        load_nc = await nats.connect(service.nats, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        answered = 0

        async def load() -> list[dict[str, Any]]:
            nonlocal answered
            replies = []
            for i, slot in enumerate(slots):
                replies.append(await _book_until_answered(load_nc, service, slot, patient, f"{run}-{i}"))
                answered += 1
            return replies

        task = asyncio.create_task(load())
        await eventually(lambda: answered >= 3, within=30)
        process = _dependency(service, dependency)
        cmdline, user = process.cmdline(), process.username()
        process.send_signal(stop_signal)
        await eventually(lambda: _gone(process), within=30)
        down_since = time.monotonic()
        await eventually(lambda: _not_ready(service), within=30, interval=0.5)
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_since)))  # the outage itself
        restarted.append(await asyncio.to_thread(_start, cmdline, user))
        replies = await asyncio.wait_for(task, 180)
        await load_nc.close()

    async with Client(service) as client:
        assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]]
        booked = {r["data"]["id"] for r in replies}
        assert len(booked) == len(slots)
        await eventually(lambda: _ready(client), within=60, interval=0.5)
        status, page, _ = await client.get(f"/patients/{patient}/appointments", limit="100")
        assert status == 200 and {a["id"] for a in page["data"]} == booked
        assert sorted(a["slotId"] for a in page["data"]) == sorted(slots)
        events = await client.events(
            "scheduling.events.appointment.created",
            lambda es: {e["data"]["id"] for e in es if e["data"]["patientId"] == patient} == booked,
            within=60,
        )
        mine = [e for e, _ in events if e["data"]["patientId"] == patient]
        assert len(mine) == len({e["id"] for e in mine}) == len(slots)  # JetStream kept each event once
    assert {role: service.role(role).pid for role in ROLES} == pids  # every role survived on its own


def _gone(process: psutil.Process) -> bool:
    """Exited: `scheduling dev` does not reap its dependencies while running, so a zombie counts as gone."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _start(cmdline: list[str], user: str) -> subprocess.Popen[bytes]:
    """The dependency again, as it was started (same port, same data folder), in a session of its own."""
    return subprocess.Popen(
        cmdline, user=user, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _not_ready(service: Service) -> bool:
    """/readyz asked over HTTP alone: the test's own NATS connection may be down too."""
    async with aiohttp.ClientSession(service.http) as http, http.get("/readyz") as response:
        return response.status == 503


async def test_nats_down_for_ten_seconds_under_load(own: Any) -> None:
    import signal

    service, restarted = own
    await _under_outage(service, restarted, "nats-server", signal.SIGKILL)


async def test_postgres_down_for_ten_seconds_under_load(own: Any) -> None:
    import signal

    service, restarted = own
    await _under_outage(service, restarted, "postgres", signal.SIGINT)
