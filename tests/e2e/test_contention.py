"""Many clients race for the same slots: the resource actor lets exactly one booking win each slot."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

from conftest import unique
from support.client import Client, schedule_body

CLIENTS = 8
SLOTS = 20
BOOKINGS = 200
DAY = "2027-02-01"


async def test_200_concurrent_bookings_of_20_slots_make_exactly_20_appointments(service: Any) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(service)) for _ in range(CLIENTS)]
        admin = clients[0]
        actor = unique("Practitioner/race")
        body = schedule_body(
            actor, f"{DAY}T00:00:00Z", f"{DAY}T23:59:00Z", location="clinic-race", service="general-practice"
        )
        schedule = await admin.ok("schedule.create", body)
        slots = [
            await admin.ok(
                "slot.create",
                {
                    "scheduleId": schedule["id"],
                    "start": f"{DAY}T{8 + i // 4:02d}:{(i % 4) * 15:02d}:00Z",
                    "end": f"{DAY}T{8 + (i + 1) // 4:02d}:{((i + 1) % 4) * 15:02d}:00Z",
                },
            )
            for i in range(SLOTS)
        ]
        slot_ids = {s["id"] for s in slots}
        assert len(slot_ids) == SLOTS

        # 200 bookings at once from 8 connections, 10 per slot, each for another patient
        replies = await asyncio.gather(
            *(
                clients[n % CLIENTS].command(
                    "appointment.book", {"slotId": slots[n % SLOTS]["id"], "patientId": f"pat-race-{n}"}
                )
                for n in range(BOOKINGS)
            )
        )

        won = [r["data"] for r in replies if r["ok"]]
        lost = Counter(r["error"]["code"] for r in replies if not r["ok"])
        assert len(won) == SLOTS, lost
        assert sum(lost.values()) == BOOKINGS - SLOTS
        assert set(lost) <= {"SLOT_NOT_AVAILABLE", "DOUBLE_BOOKING_DETECTED"}, lost
        assert all(r["error"]["status"] == 409 for r in replies if not r["ok"])
        assert {a["slotId"] for a in won} == slot_ids  # one winner per slot
        assert all(a["status"] == "booked" and a["version"] == 1 for a in won)
        winners = {a["slotId"]: a["id"] for a in won}

        # a later command on the same resource: its event comes after every event of the race
        marker_slot = await admin.ok(
            "slot.create", {"scheduleId": schedule["id"], "start": f"{DAY}T20:00:00Z", "end": f"{DAY}T20:15:00Z"}
        )
        marker = await admin.ok("appointment.book", {"slotId": marker_slot["id"], "patientId": "pat-marker"})
        marker_subject = f"appointments/{marker['id']}"
        seen = await admin.events(
            "scheduling.events.appointment.created", lambda es: any(e["subject"] == marker_subject for e in es)
        )
        created = [e for e, _ in seen if e["data"]["slotId"] in slot_ids]
        assert len(created) == SLOTS
        assert len({e["id"] for e in created}) == SLOTS  # no duplicate event ids
        assert {e["data"]["slotId"]: e["data"]["id"] for e in created} == winners

        # the read model: every slot busy, held by exactly one booked appointment
        status, body, _ = await admin.get(f"/schedules/{schedule['id']}/slots", limit="100")
        assert status == 200
        by_id = {s["id"]: s for s in body["data"]}
        assert all(
            by_id[sid]["status"] == "busy" and by_id[sid]["version"] == 3 for sid in slot_ids
        )  # held, then booked
        status, body, _ = await admin.get(
            "/calendar", providerId=actor, **{"from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:59:00Z"}, limit="100"
        )
        assert status == 200
        booked = Counter(a["slotId"] for a in body["data"] if a["status"] == "booked" and a["slotId"] in slot_ids)
        assert booked == Counter(slot_ids)
        assert {a["id"] for a in body["data"] if a["slotId"] in slot_ids} == set(winners.values())
