"""A move across resources caught between its steps, on the real stack: `GET /appointments/{id}` shows it as
`pendingMove`, `/metrics` counts its open hold, and when the target's step does not answer before the hold's
expiry the home's sweep gives the move up: the caller is refused, the appointment stays where it was and the
target slot, held late, is given back (no slot held by nobody past the expiry).

The target's actor is paused at its `saga.hold` step by a `pause` failpoint (agents/failpoints.py): the rest of
the worker, its HTTP view and the home's actor run on. The sweep is the command the leader's minute timer sends
(`holds.expire`), asked for over HTTP with an explicit `now` just before and just after the move's expiry, so the
test does not race the clock; the timer's own runs (the clock's now, before the expiry a minute away) agree.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Service, running_dev, unique
from support.bursts import until_answered
from support.client import Client, eventually
from support.metrics import value
from support.resources import resource, slot, slot_of

from domain.ids import token_of
from scheduling.core.routing import partition_of

HORIZON = {"start": "2027-09-01T00:00:00Z", "end": "2027-10-01T00:00:00Z"}
PARTITIONS = 4
ADMIN = "scheduling:read scheduling:write scheduling:admin"
OPEN, EXPIRED = "scheduling_open_holds", "scheduling_holds_expired_total"


@pytest.fixture(scope="module")
def paused() -> Iterator[tuple[Service, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="failpoints-"))
    with running_dev(
        SCHEDULING_FAILPOINTS_DIR=str(folder), SCHEDULING_HOLD_SECONDS="60", SCHEDULING_PARTITIONS=str(PARTITIONS)
    ) as started:
        yield started, folder


def _partition(schedule: dict[str, Any]) -> int:
    return partition_of(token_of(schedule["id"]), PARTITIONS)


@pytest.mark.slow
async def test_a_move_waiting_on_its_target_is_shown_counted_and_given_up_at_its_expiry(paused: Any) -> None:
    service, folder = paused
    async with Client(service) as client:
        origin = await resource(client, HORIZON)
        target = await resource(client, HORIZON)
        while _partition(target) == _partition(origin):  # the paused actor must not be the home's
            target = await resource(client, HORIZON)
        mine, wanted = await _slot(client, origin, 2), await _slot(client, target, 3)
        booked = await client.ok("appointment.book", {"slotId": mine, "patientId": unique("mover")})
        expired_before = await value(service.http, EXPIRED)

        armed = folder / "journaled-saga.hold"
        staged = folder / "staged"
        staged.write_text("pause")
        staged.rename(armed)  # whole, at once: a worker never reads it empty (an empty file means exit)
        key = unique("move")
        move = {"appointmentId": booked["id"], "newSlotId": wanted}
        moving = asyncio.create_task(until_answered(client, "appointment.reschedule", move, key))
        try:

            async def pending() -> dict[str, Any] | None:
                status, body, _ = await client.get(f"/appointments/{booked['id']}")
                assert status == 200, body
                shown: dict[str, Any] | None = body["data"].get("pendingMove")
                return shown

            shown = await eventually(pending, within=30, interval=0.1)
            assert shown["slotId"] == wanted and shown["additionalSlotIds"] == []
            assert shown["sagaId"] and shown["expiresAt"]
            status, body, _ = await client.get(f"/appointments/{booked['id']}")
            assert body["data"]["slotId"] == mine and body["data"]["status"] == "booked"

            # the sweep counts the move's open hold at home before its expiry, and gives it up after
            admin = service.auth(scope=ADMIN)
            home = str(_partition(origin))
            expires = datetime.fromisoformat(shown["expiresAt"].replace("Z", "+00:00"))

            async def sweep(now: datetime) -> None:
                status, body, _ = await client.post("/holds/expire", {"now": now.isoformat()}, headers=admin)
                assert status in (200, 202), body

            async def counted_open() -> bool:
                await sweep(expires - timedelta(seconds=30))
                return await value(service.http, OPEN, partition=home) == 1.0

            await eventually(counted_open, within=15, interval=0.2)

            async def given_up() -> bool:
                await sweep(expires + timedelta(seconds=1))
                return await value(service.http, EXPIRED) >= expired_before + 1

            await eventually(given_up, within=30, interval=0.3)
            assert await value(service.http, OPEN, partition=home) == 0.0
            await eventually(lambda: _no_pending_move(client, booked["id"]), within=15, interval=0.1)
        finally:
            armed.unlink(missing_ok=True)  # the target's actor goes on: its late hold finds the move given up

        answer = await asyncio.wait_for(moving, 60)
        assert answer["ok"] is False and answer["error"]["code"] == "NEW_SLOT_NOT_AVAILABLE", answer
        assert answer["error"]["details"]["reason"] == "hold-expired", answer
        again = await until_answered(client, "appointment.reschedule", move, key)
        assert again == answer, "a repeat with the same key gets the same answer"
        status, body, _ = await client.get(f"/appointments/{booked['id']}")
        assert body["data"]["slotId"] == mine and "pendingMove" not in body["data"]

        async def given_back() -> bool:
            target_slot, own_slot = await slot_of(client, target, wanted), await slot_of(client, origin, mine)
            return (target_slot["status"], target_slot["holds"], own_slot["status"]) == ("free", [], "busy")

        await eventually(given_back, within=30, interval=0.2)


async def _no_pending_move(client: Client, appointment_id: str) -> bool:
    status, body, _ = await client.get(f"/appointments/{appointment_id}")
    assert status == 200, body
    return "pendingMove" not in body["data"]


async def _slot(client: Client, schedule: dict[str, Any], day: int) -> str:
    return await slot(client, schedule, f"2027-09-{day:02d}T10:00:00Z", f"2027-09-{day:02d}T10:30:00Z")
