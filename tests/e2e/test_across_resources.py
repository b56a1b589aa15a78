"""Work across resources, decided by sagas between actors (domain/usecases/sagas.py), on the real stack:
reschedules between practitioners, rooms and devices held with the appointment, patients' overlapping
bookings, and many callers competing for the same slots."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import unique
from support.bursts import until_answered
from support.client import Client, eventually
from support.resources import resource, slot

EVENTS = "scheduling.events"
HORIZON = {"start": "2027-05-01T00:00:00Z", "end": "2027-06-01T00:00:00Z"}


def at(day: int, hhmm: str) -> str:
    return f"2027-05-{day:02d}T{hhmm}:00Z"


async def slots(client: Client, schedule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    status, body, _ = await client.get(f"/schedules/{schedule['id']}/slots", limit="500")
    assert status == 200, body
    return {s["id"]: s for s in body["data"]}


async def appointment(client: Client, appointment_id: str) -> dict[str, Any]:
    status, body, _ = await client.get(f"/appointments/{appointment_id}")
    assert status == 200, body
    data: dict[str, Any] = body["data"]
    return data


def code(reply: dict[str, Any]) -> str:
    assert reply["ok"] is False, reply
    error: str = reply["error"]["code"]
    return error


async def test_a_reschedule_to_another_practitioner_over_nats_and_http(service: Any) -> None:
    async with Client(service) as client:
        ill, covering = await resource(client, HORIZON), await resource(client, HORIZON)
        first = await slot(client, ill, at(3, "09:00"), at(3, "09:30"))
        second = await slot(client, ill, at(3, "10:00"), at(3, "10:30"))
        target = await slot(client, covering, at(4, "09:00"), at(4, "09:30"))
        later = await slot(client, covering, at(4, "11:00"), at(4, "11:30"))
        patient = unique("pat")
        booked = await client.ok("appointment.book", {"slotId": first, "patientId": patient})
        other = await client.ok("appointment.book", {"slotId": second, "patientId": unique("pat")})

        key = unique("move")
        moved = await client.ok(
            "appointment.reschedule", {"appointmentId": booked["id"], "newSlotId": target}, headers={"Nats-Msg-Id": key}
        )
        assert (moved["id"], moved["slotId"], moved["start"]) == (booked["id"], target, at(4, "09:00"))
        assert moved["providerId"] == covering["actor"]["reference"] and "pendingMove" not in moved
        assert moved["participants"][0]["actor"] == covering["actor"]
        seen = await client.events(f"{EVENTS}.appointment.updated", lambda es: any(e["data"] == moved for e in es))
        assert [e["data"]["slotId"] for e, _ in seen if e["subject"] == f"appointments/{booked['id']}"] == [target]
        assert (await slots(client, ill))[first]["status"] == "free"
        assert await appointment(client, booked["id"]) == moved
        # the other practitioner's slot is confirmed by an internal command right after the reply
        assert await eventually(lambda: _status(client, covering, target, "busy"))
        held = (await slots(client, covering))[target]
        assert (held["booked"], held["holds"]) == (1, [])

        # a repeat with the same key is answered with the saga's outcome, and changes nothing more
        again = await client.ok(
            "appointment.reschedule", {"appointmentId": booked["id"], "newSlotId": target}, headers={"Nats-Msg-Id": key}
        )
        assert again == moved

        # over HTTP: the other patient moves to the covering practitioner too; then back, by the same path
        status, body, _ = await client.post(f"/appointments/{other['id']}/reschedule", {"newSlotId": later})
        assert status == 200 and body["data"]["slotId"] == later, body
        away = body["data"]
        assert away["providerId"] == covering["actor"]["reference"] and "pendingMove" not in away
        assert await appointment(client, other["id"]) == away
        assert (await slots(client, ill))[second]["status"] == "free"
        assert await eventually(lambda: _status(client, covering, later, "busy"))
        status, body, _ = await client.post(f"/appointments/{other['id']}/reschedule", {"newSlotId": second})
        assert status == 200 and body["data"]["slotId"] == second, body
        back = body["data"]
        assert back["providerId"] == ill["actor"]["reference"] and await appointment(client, other["id"]) == back
        assert (await slots(client, ill))[second]["status"] == "busy"
        # both HTTP moves are published like the NATS one, in order
        subject = f"appointments/{other['id']}"
        seen = await client.events(f"{EVENTS}.appointment.updated", lambda es: any(e["data"] == back for e in es))
        assert [e["data"]["slotId"] for e, _ in seen if e["subject"] == subject] == [later, second]
        # the other resource's slot is given back by an internal command after the reply (docs/decisions.md)
        assert await eventually(lambda: _status(client, covering, later, "free"))

        # the moved appointment is cancelled where it lives: the other practitioner's slot is given back
        await client.ok("appointment.cancel", {"appointmentId": booked["id"]})
        assert await eventually(lambda: _status(client, covering, target, "free"))


async def _status(client: Client, schedule: dict[str, Any], slot_id: str, expected: str) -> bool:
    return (await slots(client, schedule))[slot_id]["status"] == expected


async def test_a_refused_move_changes_nothing(service: Any) -> None:
    async with Client(service) as client:
        a, b = await resource(client, HORIZON), await resource(client, HORIZON)
        mine = await slot(client, a, at(5, "09:00"), at(5, "09:30"))
        taken = await slot(client, b, at(5, "10:00"), at(5, "10:30"))
        booked = await client.ok("appointment.book", {"slotId": mine, "patientId": unique("pat")})
        await client.ok("appointment.book", {"slotId": taken, "patientId": unique("pat")})
        reply = await client.command("appointment.reschedule", {"appointmentId": booked["id"], "newSlotId": taken})
        assert code(reply) == "NEW_SLOT_NOT_AVAILABLE"
        after = await appointment(client, booked["id"])
        assert after["slotId"] == mine and "pendingMove" not in after
        assert (await slots(client, a))[mine]["status"] == "busy"


async def test_a_room_is_held_with_the_appointment_and_never_twice(service: Any) -> None:
    async with Client(service) as client:
        doctor, nurse = await resource(client, HORIZON), await resource(client, HORIZON)
        room = await resource(client, HORIZON, "Location")
        by_doctor = await slot(client, doctor, at(6, "09:00"), at(6, "10:00"))
        by_nurse = await slot(client, nurse, at(6, "09:00"), at(6, "10:00"))
        room_slot = await slot(client, room, at(6, "09:00"), at(6, "10:00"))
        same_room = await resource(client, HORIZON, "Location", room["actor"]["reference"])
        overlapping_room = await slot(client, same_room, at(6, "09:30"), at(6, "10:30"))

        booked = await client.ok(
            "appointment.book",
            {"slotId": by_doctor, "patientId": unique("pat"), "additionalSlotIds": [room_slot]},
        )
        assert booked["additionalSlotIds"] == [room_slot]
        assert room["actor"] in [p["actor"] for p in booked["participants"]]
        # held (busy-tentative) until the room's partition confirms it, after the reply
        assert (await slots(client, room))[room_slot]["status"] in {"busy-tentative", "busy"}
        assert await eventually(lambda: _status(client, room, room_slot, "busy"))

        # the same room for the nurse at the same time: refused, whichever of its slots is named
        for room_choice, refusal in ((room_slot, "SLOT_NOT_AVAILABLE"), (overlapping_room, "DOUBLE_BOOKING_DETECTED")):
            reply = await client.command(
                "appointment.book",
                {"slotId": by_nurse, "patientId": unique("pat"), "additionalSlotIds": [room_choice]},
            )
            assert code(reply) == refusal, reply
        nurse_slots, room_slots = await slots(client, nurse), await slots(client, same_room)
        assert nurse_slots[by_nurse]["status"] == "free" and nurse_slots[by_nurse]["holds"] == []
        assert room_slots[overlapping_room]["status"] == "free" and room_slots[overlapping_room]["holds"] == []

        # cancelled: the room is given back too
        await client.ok("appointment.cancel", {"appointmentId": booked["id"]})
        assert await eventually(lambda: _status(client, room, room_slot, "free"))


async def test_a_patient_cannot_hold_two_overlapping_appointments(service: Any) -> None:
    async with Client(service) as client:
        a, b, c = await resource(client, HORIZON), await resource(client, HORIZON), await resource(client, HORIZON)
        first = await slot(client, a, at(7, "09:00"), at(7, "09:30"))
        clash = await slot(client, b, at(7, "09:15"), at(7, "09:45"))
        after = await slot(client, c, at(7, "09:30"), at(7, "10:00"))
        patient = unique("pat")
        booked = await client.ok("appointment.book", {"slotId": first, "patientId": patient})
        reply = await client.command("appointment.book", {"slotId": clash, "patientId": patient})
        assert code(reply) == "PATIENT_DOUBLE_BOOKING" and reply["error"]["status"] == 409
        assert reply["error"]["details"]["appointmentIds"] == [booked["id"]]
        assert (await slots(client, b))[clash]["status"] == "free"
        # right after it is fine, and so is the overlap with the double-book scope and the override
        await client.ok("appointment.book", {"slotId": after, "patientId": patient})
        await client.ok(
            "appointment.book",
            {"slotId": clash, "patientId": patient, "allowDoubleBooking": True},
            scope="scheduling:write scheduling:read scheduling:double-book",
        )
        # a move into the patient's own overlapping time is refused the same way, and changes nothing
        d = await resource(client, HORIZON)
        elsewhere = await slot(client, d, at(9, "09:00"), at(9, "09:30"))
        overlapping = await slot(client, d, at(7, "09:10"), at(7, "09:40"))
        moving = await client.ok("appointment.book", {"slotId": elsewhere, "patientId": patient})
        reply = await client.command(
            "appointment.reschedule", {"appointmentId": moving["id"], "newSlotId": overlapping}
        )
        assert code(reply) == "PATIENT_DOUBLE_BOOKING", reply
        assert booked["id"] in reply["error"]["details"]["appointmentIds"]
        assert (await appointment(client, moving["id"]))["slotId"] == elsewhere
        assert (await slots(client, d))[overlapping]["status"] == "free"
        # once cancelled, the patient's time is free again
        third = await slot(client, a, at(8, "09:00"), at(8, "09:30"))
        fourth = await slot(client, b, at(8, "09:00"), at(8, "09:30"))
        gone = await client.ok("appointment.book", {"slotId": third, "patientId": patient})
        await client.ok("appointment.cancel", {"appointmentId": gone["id"]})
        await client.ok("appointment.book", {"slotId": fourth, "patientId": patient})


def _nth(day: int, first_hour: int, minutes: int, i: int) -> tuple[str, str]:
    """The i-th of back-to-back slots of `minutes` from `first_hour` on `day`."""
    start, end = first_hour * 60 + i * minutes, first_hour * 60 + (i + 1) * minutes
    return at(day, f"{start // 60:02d}:{start % 60:02d}"), at(day, f"{end // 60:02d}:{end % 60:02d}")


async def test_one_hundred_callers_for_ten_slots_make_ten_winners(service: Any) -> None:
    """50 cross-resource reschedules and 50 bookings race for the same 10 slots of one practitioner."""
    async with Client(service) as client:
        origin, target = await resource(client, HORIZON), await resource(client, HORIZON)
        wanted = [await slot(client, target, *_nth(10, 9, 30, i)) for i in range(10)]
        own = [await slot(client, origin, *_nth(11, 8, 15, i)) for i in range(50)]
        booked = await asyncio.gather(
            *(client.ok("appointment.book", {"slotId": s, "patientId": unique("mover")}) for s in own)
        )

        async def move(i: int) -> tuple[str, dict[str, Any]]:
            body = {"appointmentId": booked[i]["id"], "newSlotId": wanted[i % 10]}
            return "move", await until_answered(client, "appointment.reschedule", body, unique("m"))

        booker_patients = [unique("booker") for _ in range(50)]

        async def book(i: int) -> tuple[str, dict[str, Any]]:
            body = {"slotId": wanted[i % 10], "patientId": booker_patients[i]}
            return "book", await until_answered(client, "appointment.book", body, unique("b"))

        racers = [move(i) for i in range(50)] + [book(i) for i in range(50)]
        results = await asyncio.gather(*racers)
        winners = [reply["data"] for _, reply in results if reply["ok"]]
        assert len(winners) == 10 and sorted(w["slotId"] for w in winners) == sorted(wanted), winners
        losers = {kind: [code(r) for k, r in results if k == kind and not r["ok"]] for kind in ("move", "book")}
        assert set(losers["move"]) <= {"NEW_SLOT_NOT_AVAILABLE", "DOUBLE_BOOKING_DETECTED"}, losers
        assert set(losers["book"]) <= {"SLOT_NOT_AVAILABLE", "DOUBLE_BOOKING_DETECTED"}, losers

        # every loser that was moving keeps its slot; every wanted slot has exactly one holder, none held
        moved = {w["id"] for w in winners}
        for i, before in enumerate(booked):
            now = await appointment(client, before["id"])
            assert now["slotId"] == (wanted[i % 10] if before["id"] in moved else own[i]), now
            assert "pendingMove" not in now
        target_slots, origin_slots = await slots(client, target), await slots(client, origin)
        assert all(target_slots[s]["status"] == "busy" and target_slots[s]["holds"] == [] for s in wanted)
        assert all(s["holds"] == [] for s in origin_slots.values())
        for i, s in enumerate(own):
            assert origin_slots[s]["status"] == ("free" if booked[i]["id"] in moved else "busy")
        # a losing booker got no appointment and keeps no reserved time: the same patient books that hour
        lost_bookers = [i for i, (kind, reply) in enumerate(results) if kind == "book" and not reply["ok"]][:3]
        for i in lost_bookers:
            start, end = _nth(10, 9, 30, (i - 50) % 10)
            again = {"slotId": await slot(client, await resource(client, HORIZON), start, end),
                     "patientId": booker_patients[i - 50]}  # fmt: skip
            await eventually(lambda body=again: _booked(client, body), within=15, interval=0.2)


async def test_hostile_additional_slots_are_refused_and_change_nothing(service: Any) -> None:
    async with Client(service) as client:
        doctor, room = await resource(client, HORIZON), await resource(client, HORIZON, "Location")
        mine = await slot(client, doctor, at(12, "09:00"), at(12, "09:30"))
        room_slot = await slot(client, room, at(12, "09:00"), at(12, "09:30"))
        async with Client(service) as other:
            theirs = await other.ok(
                "schedule.create",
                {"actor": {"reference": unique("Location/t2"), "type": "Location"}, "locationId": "Location/x",
                 "serviceType": "gp", "planningHorizon": HORIZON},
                tenant="t2",
            )  # fmt: skip
            foreign = (await other.ok(
                "slot.create", {"scheduleId": theirs["id"], "start": at(12, "09:00"), "end": at(12, "09:30")},
                tenant="t2",
            ))["id"]  # fmt: skip
        hostile: list[tuple[Any, str]] = [
            ([foreign], "SLOT_NOT_FOUND"),  # another tenant's slot does not exist for this caller
            (["a\x00b"], "VALIDATION_FAILED"),
            ([room_slot] * 2, "VALIDATION_FAILED"),
            ([mine], "VALIDATION_FAILED"),
            ([f"sl-{'0' * 12}-{i}" for i in range(6)], "VALIDATION_FAILED"),
            (room_slot, "VALIDATION_FAILED"),
            ([{"id": room_slot}], "VALIDATION_FAILED"),
            (["x" * 100_000], "VALIDATION_FAILED"),
        ]
        for additional, expected in hostile:
            body = {"slotId": mine, "patientId": unique("pat"), "additionalSlotIds": additional}
            reply = await client.command("appointment.book", body)
            assert code(reply) == expected, (additional if len(str(additional)) < 200 else "huge", reply)
        mine_now, room_now = (await slots(client, doctor))[mine], (await slots(client, room))[room_slot]
        assert (mine_now["status"], mine_now["holds"], room_now["status"], room_now["holds"]) == (
            "free",
            [],
            "free",
            [],
        )


async def _booked(client: Client, body: dict[str, Any]) -> bool:
    """Booked, or refused only for the patient's time (given back by an internal command after a reply)."""
    reply = await client.command("appointment.book", body)
    assert reply["ok"] or code(reply) == "PATIENT_DOUBLE_BOOKING", reply
    return bool(reply["ok"])
