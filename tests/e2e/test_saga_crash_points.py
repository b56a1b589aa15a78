"""The worker dies at each step of a saga across resources (deterministic failpoints, docs/decisions.md "Work
across resources"): when the move started, when a slot was held on another resource's partition, when the
home settled it, when the held slot was confirmed. Each time, once `scheduling dev` has restarted the worker,
the callers repeating with their idempotency keys are answered, the contested slot is held by exactly one
appointment, the loser keeps what it had, and no slot stays held by nobody.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Service, running_dev, unique
from support.bursts import until_answered
from support.client import Client, eventually
from support.resources import resource, slot, slot_of

HORIZON = {"start": "2027-07-01T00:00:00Z", "end": "2027-08-01T00:00:00Z"}


@pytest.fixture(scope="module")
def armed() -> Iterator[tuple[Service, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="failpoints-"))
    with running_dev(SCHEDULING_FAILPOINTS_DIR=str(folder)) as started:
        yield started, folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "failpoint",
    [
        "journaled-appointment.reschedule",
        "journaled-appointment.book",
        "journaled-saga.hold",
        "applied-saga.hold",
        "applied-saga.settle",
        "published-saga.confirm",
    ],
)
async def test_a_worker_dying_at_a_saga_step_ends_in_one_outcome(armed: Any, failpoint: str) -> None:
    service, folder = armed
    async with Client(service) as client:
        origin, target, room = (
            await resource(client, HORIZON),
            await resource(client, HORIZON),
            await resource(client, HORIZON, "Location"),
        )
        device = await resource(client, HORIZON, "Device")
        mine, wanted, room_slot, device_slot = (
            await _slot(client, origin, 2),
            await _slot(client, target, 3),
            await _slot(client, room, 3),
            await _slot(client, device, 3),
        )
        booked = await client.ok("appointment.book", {"slotId": mine, "patientId": unique("mover")})
        worker = service.role("worker").pid

        (folder / failpoint).touch()
        move = {"appointmentId": booked["id"], "newSlotId": wanted, "additionalSlotIds": [room_slot]}
        # whichever wins has another resource's seat to confirm (a plain booking has no confirmation step)
        rival = {"slotId": wanted, "patientId": unique("rival"), "additionalSlotIds": [device_slot]}
        move_key, rival_key = unique("move"), unique("rival")
        moved, rivalled = await asyncio.gather(
            until_answered(client, "appointment.reschedule", move, move_key),
            until_answered(client, "appointment.book", rival, rival_key),
        )
        # a confirmation is decided after the caller's reply: the worker may reach it a moment later
        await eventually(lambda: not (folder / failpoint).exists(), within=30)
        await eventually(lambda: service.replaced("worker", worker), within=30)
        await eventually(client.serving, within=60, interval=0.2)

        assert [moved["ok"], rivalled["ok"]].count(True) == 1, (moved, rivalled)
        winner = moved["data"] if moved["ok"] else rivalled["data"]
        assert winner["slotId"] == wanted
        status, now, _ = await client.get(f"/appointments/{booked['id']}")
        assert status == 200 and "pendingMove" not in now["data"]
        assert now["data"]["slotId"] == (wanted if moved["ok"] else mine)

        async def settled() -> bool:
            """Every confirmation and release has landed: nothing held, each slot as its holder says."""
            slots = [await slot_of(client, origin, mine), await slot_of(client, target, wanted),
                     await slot_of(client, room, room_slot), await slot_of(client, device, device_slot)]  # fmt: skip
            expected = ["free", "busy", "busy", "free"] if moved["ok"] else ["busy", "busy", "free", "busy"]
            return [s["status"] for s in slots] == expected and all(s["holds"] == [] for s in slots)

        await eventually(settled, within=30, interval=0.2)
        assert (await slot_of(client, target, wanted))["booked"] == 1

        # after the restart, both callers repeating with their keys get the answers they got
        assert await until_answered(client, "appointment.reschedule", move, move_key) == moved
        assert await until_answered(client, "appointment.book", rival, rival_key) == rivalled
        # the patients' time is as the outcome says: the winner's is taken, the loser's was given back
        elsewhere = await _slot(client, await resource(client, HORIZON), 3)
        winner_patient, loser_patient = (move, rival) if moved["ok"] else (rival, move)
        refused = await client.command(
            "appointment.book", {"slotId": elsewhere, "patientId": _patient(winner_patient, booked)}
        )
        assert not refused["ok"] and refused["error"]["code"] == "PATIENT_DOUBLE_BOOKING", refused
        # the loser's time may be given back a moment after its answer (a release after the reply)
        loser = {"slotId": elsewhere, "patientId": _patient(loser_patient, booked)}

        async def loser_booked() -> bool:
            reply = await client.command("appointment.book", loser)
            assert reply["ok"] or reply["error"]["code"] == "PATIENT_DOUBLE_BOOKING", reply
            return bool(reply["ok"])

        await eventually(loser_booked, within=15, interval=0.2)


def _patient(body: dict[str, Any], booked: dict[str, Any]) -> str:
    """The patient a racer's command is for (the mover's is its appointment's)."""
    patient: str = body.get("patientId") or booked["patientId"]
    return patient


async def _slot(client: Client, schedule: dict[str, Any], day: int) -> str:
    return await slot(client, schedule, f"2027-07-{day:02d}T09:00:00Z", f"2027-07-{day:02d}T09:30:00Z")
