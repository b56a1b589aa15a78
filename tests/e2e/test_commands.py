"""Every command of the seed, with its rules, end to end on the actor path.

Each test drives the running service from outside only: a NATS request (or a plain publish, or an HTTP
route), then the CloudEvents on JetStream and the state the HTTP view shows. Every test books on its own
actor, so its commands go to their own resource and nothing else interferes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import unique
from support.client import Client, eventually

RW = "scheduling:read scheduling:write"
DOUBLE_BOOK = f"{RW} scheduling:double-book"
#: Monday 1 March 2027 to Saturday 6 March 2027.
HORIZON = {"start": "2027-03-01T00:00:00Z", "end": "2027-03-06T00:00:00Z"}
SERVICE = "general-practice"
LOCATION = "clinic-north"
EVENTS = "scheduling.events"
#: March 2027 lies months ahead: check-in there needs a window opened that early (CONTRACT section 9)
EARLY_CHECK_IN = {"checkInWindow": {"beforeMinutes": 525_600}}
#: Ids minted by the service (CONTRACT section 1).
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def at(day: int, hhmm: str) -> str:
    return f"2027-03-{day:02d}T{hhmm}:00Z"


def from_now(seconds: float, minutes: int = 30) -> tuple[str, str]:
    """A slot starting `seconds` from now (the time rules are decided with the worker's clock)."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    return start.isoformat(), (start + timedelta(minutes=minutes)).isoformat()


def around_now() -> dict[str, str]:
    today = datetime.now(UTC).replace(microsecond=0)
    return {"start": (today - timedelta(days=1)).isoformat(), "end": (today + timedelta(days=2)).isoformat()}


async def once_started(client: Client, name: str, body: dict[str, Any], prefix: str) -> tuple[dict[str, Any], str]:
    """`noshow` and `fulfilled` need the start: send the command until the clock has passed it.

    Each attempt has a key of its own (a repeated key would get the first refusal); returns the reply data
    and the key of the attempt that was decided."""

    async def decided() -> tuple[dict[str, Any], str] | None:
        key = unique(prefix)
        reply = await client.command(name, body, headers=key_header(key))
        started = reply["ok"] or reply["error"].get("details", {}).get("reason") != "not-started"
        return (reply, key) if started else None

    reply, key = await eventually(decided, within=20, interval=0.5)
    assert reply["ok"], reply
    data: dict[str, Any] = reply["data"]
    return data, key


def same_time(a: str, b: str) -> bool:
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


async def make_schedule(client: Client, actor: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {
        "actor": {"reference": actor or unique("Practitioner/p"), "type": "Practitioner"},
        "locationId": LOCATION,
        "serviceType": SERVICE,
        "planningHorizon": HORIZON,
        **extra,
    }
    return await client.ok("schedule.create", body)


async def make_slot(client: Client, schedule_id: str, start: str, end: str) -> dict[str, Any]:
    return await client.ok("slot.create", {"scheduleId": schedule_id, "start": start, "end": end})


async def book(client: Client, slot_id: str, patient: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """A booking for `patient`, by default a new one: a patient's appointments may not overlap."""
    body = {"slotId": slot_id, "patientId": patient or unique("pat")}
    return await client.ok("appointment.book", body, **kwargs)


def key_header(key: str) -> dict[str, str]:
    return {"Nats-Msg-Id": key}


def refused(reply: dict[str, Any], code: str, status: int) -> dict[str, Any]:
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == code and reply["error"]["status"] == status, reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    error: dict[str, Any] = reply["error"]
    return error


async def expect_event(
    client: Client, key: str, event_type: str, subject: str, *, version: int, tenant: str = "t1"
) -> dict[str, Any]:
    """The one CloudEvent of `event_type` about `subject` caused by the command with idempotency key `key`."""

    def mine(e: dict[str, Any]) -> bool:
        return e["causationid"] == key and e["subject"] == subject

    seen = await client.events(f"{EVENTS}.{event_type}", lambda es: any(mine(e) for e in es))
    found = [(e, h) for e, h in seen if mine(e)]
    assert len(found) == 1, found
    event, headers = found[0]
    assert event["specversion"] == "1.0" and event["source"] == "/scheduling"
    assert event["type"] == event_type and event["datacontenttype"] == "application/json"
    assert event["tenantid"] == tenant and event["causationid"] == key
    assert headers["Nats-Msg-Id"] == event["id"] and event["time"]
    assert event["data"]["version"] == version, event
    assert ID.fullmatch(event["data"]["id"]) and event["subject"].endswith(f"/{event['data']['id']}")
    return event


async def marker(client: Client, schedule_id: str, start: str, end: str) -> str:
    """A later command on the same resource, whose event comes after every event of the commands before it."""
    key = unique("marker")
    await client.ok("slot.create", {"scheduleId": schedule_id, "start": start, "end": end}, headers=key_header(key))
    return key


async def caused_by(client: Client, key: str, *, before: str) -> list[dict[str, Any]]:
    """Every event caused by `key`, read once the event of the later command `before` has arrived."""
    seen = await client.events(f"{EVENTS}.>", lambda es: any(e["causationid"] == before for e in es))
    return [e for e, _ in seen if e["causationid"] == key]


async def slots_of(client: Client, schedule_id: str) -> dict[str, dict[str, Any]]:
    status, body, _ = await client.get(f"/schedules/{schedule_id}/slots", limit="500")
    assert status == 200, body
    return {s["id"]: s for s in body["data"]}


async def appointment(client: Client, appointment_id: str) -> dict[str, Any]:
    status, body, headers = await client.get(f"/appointments/{appointment_id}")
    assert status == 200 and body["ok"] is True, body
    assert headers["ETag"] == f'"{body["data"]["version"]}"'
    data: dict[str, Any] = body["data"]
    return data


async def waitlist(client: Client, status: str) -> dict[str, dict[str, Any]]:
    """The tenant's whole waitlist in `status`, every page of it."""
    entries: dict[str, dict[str, Any]] = {}
    params = {"status": status, "limit": "500"}
    while True:
        code, body, _ = await client.get("/waitlist", **params)
        assert code == 200, body
        entries.update((e["id"], e) for e in body["data"])
        if not body.get("nextCursor"):
            return entries
        params["cursor"] = body["nextCursor"]


# --- BookAppointment ----------------------------------------------------------------------------


async def test_book_appointment(service: Any) -> None:
    async with Client(service) as client:
        actor = unique("Practitioner/book")
        schedule = await make_schedule(client, actor)
        slot = await make_slot(client, schedule["id"], at(1, "09:00"), at(1, "09:30"))
        key = unique("book")
        nurse = {"actor": {"reference": "Practitioner/nurse-1", "type": "Practitioner"}, "required": False}
        reply = await client.command(
            "appointment.book",
            {"slotId": slot["id"], "patientId": "pat-book", "participants": [nurse], "description": "annual check"},
            headers=key_header(key),
        )
        assert reply["ok"] is True, reply
        booked = reply["data"]
        assert booked["status"] == "booked" and booked["version"] == 1 and booked["tenantId"] == "t1"
        assert booked["slotId"] == slot["id"] and booked["patientId"] == "pat-book"
        assert booked["start"] == slot["start"] and booked["end"] == slot["end"]
        assert booked["serviceType"] == SERVICE and booked["description"] == "annual check"
        actors = [p["actor"] for p in booked["participants"]]
        assert {"reference": actor, "type": "Practitioner"} in actors
        assert {"reference": "Patient/pat-book", "type": "Patient"} in actors
        assert {"reference": "Practitioner/nurse-1", "type": "Practitioner"} in actors

        event = await expect_event(client, key, "appointment.created", f"appointments/{booked['id']}", version=1)
        assert event["data"]["status"] == "booked" and event["data"]["slotId"] == slot["id"]

        assert (await appointment(client, booked["id"]))["participants"] == booked["participants"]
        assert (await slots_of(client, schedule["id"]))[slot["id"]]["status"] == "busy"
        status, body, _ = await client.get("/slots", providerId=actor, **{"from": at(1, "00:00"), "to": at(2, "00:00")})
        assert status == 200 and body["data"] == []  # no longer free
        status, body, _ = await client.get("/patients/pat-book/appointments", limit="500")
        assert status == 200 and booked["id"] in {a["id"] for a in body["data"]}


async def test_double_booking_across_two_schedules_of_one_actor(service: Any) -> None:
    async with Client(service) as client:
        actor = unique("Practitioner/double")
        morning = await make_schedule(client, actor)
        other = await make_schedule(client, actor, locationId="clinic-south")
        first_slot = await make_slot(client, morning["id"], at(2, "09:00"), at(2, "09:30"))
        clash_slot = await make_slot(client, other["id"], at(2, "09:15"), at(2, "09:45"))
        first = await book(client, first_slot["id"], "pat-a")

        detected_key, denied_key = unique("dbl"), unique("deny")
        detected = await client.command(
            "appointment.book", {"slotId": clash_slot["id"], "patientId": "pat-b"}, headers=key_header(detected_key)
        )
        error = refused(detected, "DOUBLE_BOOKING_DETECTED", 409)
        assert error["details"]["appointmentIds"] == [first["id"]]

        body = {"slotId": clash_slot["id"], "patientId": "pat-b", "allowDoubleBooking": True}
        denied = await client.command("appointment.book", body, headers=key_header(denied_key))
        refused(denied, "DOUBLE_BOOKING_OVERRIDE_DENIED", 403)
        slots = await slots_of(client, other["id"])
        assert slots[clash_slot["id"]]["status"] == "free" and slots[clash_slot["id"]]["version"] == 1

        override_key = unique("override")
        second = await client.ok("appointment.book", body, headers=key_header(override_key), scope=DOUBLE_BOOK)
        assert second["status"] == "booked" and second["slotId"] == clash_slot["id"]
        await expect_event(client, override_key, "appointment.created", f"appointments/{second['id']}", version=1)
        slot = (await slots_of(client, other["id"]))[clash_slot["id"]]
        assert slot["status"] == "busy" and slot["overbooked"] is True
        assert (await appointment(client, first["id"]))["status"] == "booked"
        # the refusals emitted nothing (the override, on the same resource, came after them)
        assert await caused_by(client, detected_key, before=override_key) == []
        assert await caused_by(client, denied_key, before=override_key) == []


# --- RescheduleAppointment ----------------------------------------------------------------------


async def test_reschedule_appointment(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)
        old = await make_slot(client, schedule["id"], at(3, "09:00"), at(3, "09:30"))
        new = await make_slot(client, schedule["id"], at(3, "10:00"), at(3, "10:30"))
        taken = await make_slot(client, schedule["id"], at(3, "11:00"), at(3, "11:30"))
        moving = await book(client, old["id"], "pat-move")
        other = await book(client, taken["id"], "pat-stay")

        key = unique("resched")
        moved = await client.ok(
            "appointment.reschedule",
            {"appointmentId": moving["id"], "newSlotId": new["id"]},
            headers=key_header(key),
        )
        # version 2 while the patient's new time was being held (pendingMove), 3 once moved
        assert moved["id"] == moving["id"] and moved["slotId"] == new["id"] and moved["version"] == 3
        assert moved["start"] == new["start"] and moved["end"] == new["end"] and moved["status"] == "booked"
        event = await expect_event(client, key, "appointment.updated", f"appointments/{moving['id']}", version=3)
        assert event["data"]["slotId"] == new["id"]

        slots = await slots_of(client, schedule["id"])
        assert (slots[old["id"]]["status"], slots[old["id"]]["version"]) == ("free", 4)  # held, booked, freed
        assert (slots[new["id"]]["status"], slots[new["id"]]["version"]) == ("busy", 2)
        current = await appointment(client, moving["id"])
        assert current["slotId"] == new["id"] and same_time(current["start"], new["start"])

        # to a busy slot: refused, and nothing changes
        refused_key = unique("resched-busy")
        reply = await client.command(
            "appointment.reschedule",
            {"appointmentId": moving["id"], "newSlotId": taken["id"]},
            headers=key_header(refused_key),
        )
        refused(reply, "NEW_SLOT_NOT_AVAILABLE", 409)
        assert await slots_of(client, schedule["id"]) == slots
        assert await appointment(client, moving["id"]) == current
        assert (await appointment(client, other["id"]))["slotId"] == taken["id"]
        # to a taken slot of another resource: refused too, and nothing changes (moves between resources:
        # tests/e2e/test_across_resources.py)
        elsewhere = await make_schedule(client)
        foreign = await make_slot(client, elsewhere["id"], at(3, "12:00"), at(3, "12:30"))
        await book(client, foreign["id"])
        reply = await client.command(
            "appointment.reschedule", {"appointmentId": moving["id"], "newSlotId": foreign["id"]}
        )
        refused(reply, "NEW_SLOT_NOT_AVAILABLE", 409)
        assert await slots_of(client, schedule["id"]) == slots
        # the move was tried (pendingMove, then given up): only the version moved
        assert {**await appointment(client, moving["id"]), "version": 0} == {**current, "version": 0}
        after = await marker(client, schedule["id"], at(3, "16:00"), at(3, "16:30"))
        assert await caused_by(client, refused_key, before=after) == []


# --- UpdateAppointmentStatus --------------------------------------------------------------------


async def test_update_appointment_status(service: Any) -> None:
    async with Client(service) as client:
        # about to start: `arrived` is inside its check-in window, `fulfilled` waits for the start
        schedule = await make_schedule(client, planningHorizon=around_now())
        slot = await make_slot(client, schedule["id"], *from_now(2))
        other_schedule = await make_schedule(client, planningHorizon=around_now())
        other_slot = await make_slot(client, other_schedule["id"], *from_now(2))
        booked = await book(client, slot["id"])
        absent = await book(client, other_slot["id"], "pat-absent")

        for version, status in ((2, "arrived"), (3, "fulfilled")):
            body = {"appointmentId": booked["id"], "status": status}
            data, key = await once_started(client, "appointment.status", body, status)
            assert data["status"] == status and data["version"] == version
            event = await expect_event(
                client, key, f"appointment.{status}", f"appointments/{booked['id']}", version=version
            )
            assert event["data"]["status"] == status
        current = await appointment(client, booked["id"])
        assert current["status"] == "fulfilled" and current["version"] == 3
        assert (await slots_of(client, schedule["id"]))[slot["id"]]["status"] == "busy"  # fulfilled holds its slot

        invalid_key = unique("invalid")
        reply = await client.command(
            "appointment.status", {"appointmentId": booked["id"], "status": "booked"}, headers=key_header(invalid_key)
        )
        error = refused(reply, "INVALID_STATUS_TRANSITION", 409)
        assert error["details"] == {"from": "fulfilled", "to": "booked"}
        assert await appointment(client, booked["id"]) == current
        # per entity, events arrive in version order
        subject = f"appointments/{booked['id']}"
        seen = await client.events(
            f"{EVENTS}.>", lambda es: any(e["subject"] == subject and e["data"]["version"] == 3 for e in es)
        )
        assert [(e["type"], e["data"]["version"]) for e, _ in seen if e["subject"] == subject] == [
            ("appointment.created", 1),
            ("appointment.arrived", 2),
            ("appointment.fulfilled", 3),
        ]

        # noshow is final and gives the slot back
        _, key = await once_started(
            client, "appointment.status", {"appointmentId": absent["id"], "status": "noshow"}, "noshow"
        )
        await expect_event(client, key, "appointment.noshow", f"appointments/{absent['id']}", version=2)
        assert (await slots_of(client, other_schedule["id"]))[other_slot["id"]]["status"] == "free"
        reply = await client.command("appointment.status", {"appointmentId": absent["id"], "status": "arrived"})
        refused(reply, "INVALID_STATUS_TRANSITION", 409)
        after = await marker(client, schedule["id"], *from_now(3600))
        assert await caused_by(client, invalid_key, before=after) == []


# --- CancelAppointment --------------------------------------------------------------------------


async def test_cancel_frees_the_slot_and_tells_the_best_waiting_entry(service: Any) -> None:
    async with Client(service) as client:
        actor = unique("Practitioner/cancel")
        schedule = await make_schedule(client, actor)
        slot = await make_slot(client, schedule["id"], at(2, "10:00"), at(2, "10:30"))
        booked = await book(client, slot["id"], "pat-leaving")
        wanted = {
            "serviceType": SERVICE,
            "providerId": actor,
            "requestedPeriod": {"start": at(2, "08:00"), "end": at(2, "18:00")},
        }
        low = await client.ok("waitlist.add", {**wanted, "patientId": "pat-low", "priority": 1})
        high = await client.ok("waitlist.add", {**wanted, "patientId": "pat-high", "priority": 7})
        other_service = await client.ok(
            "waitlist.add", {**wanted, "patientId": "pat-other", "priority": 9, "serviceType": "dermatology"}
        )

        key = unique("cancel")
        cancelled = await client.ok(
            "appointment.cancel",
            {"appointmentId": booked["id"], "reason": "patient is travelling"},
            headers=key_header(key),
        )
        assert cancelled["status"] == "cancelled" and cancelled["version"] == 2
        assert cancelled["cancellationReason"] == "patient is travelling"
        await expect_event(client, key, "appointment.cancelled", f"appointments/{booked['id']}", version=2)
        offer = await expect_event(client, key, "waitlist.slot-available", f"waitlist/{high['id']}", version=2)
        assert offer["data"]["status"] == "offered" and offer["data"]["offeredSlotId"] == slot["id"]
        assert offer["data"]["patientId"] == "pat-high" and offer["data"]["slot"]["id"] == slot["id"]

        freed = (await slots_of(client, schedule["id"]))[slot["id"]]
        assert freed["status"] == "free" and freed["version"] == 4  # held, booked, freed
        assert (await appointment(client, booked["id"]))["status"] == "cancelled"
        assert high["id"] in await waitlist(client, "offered")
        waiting = await waitlist(client, "waiting")
        assert low["id"] in waiting and other_service["id"] in waiting
        # nothing is booked: the cancel emitted exactly its two events and the calendar holds no new appointment
        after = await marker(client, schedule["id"], at(2, "16:00"), at(2, "16:30"))
        assert sorted(e["type"] for e in await caused_by(client, key, before=after)) == [
            "appointment.cancelled",
            "waitlist.slot-available",
        ]
        status, body, _ = await client.get(
            "/calendar", providerId=actor, **{"from": at(1, "00:00"), "to": at(6, "00:00")}
        )
        assert status == 200 and [(a["id"], a["status"]) for a in body["data"]] == [(booked["id"], "cancelled")]
        refused(
            await client.command("appointment.cancel", {"appointmentId": booked["id"]}),
            "INVALID_STATUS_TRANSITION",
            409,
        )


# --- CheckInPatient -----------------------------------------------------------------------------


async def test_check_in_patient(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client, bookingPolicy=EARLY_CHECK_IN)
        slot = await make_slot(client, schedule["id"], at(5, "09:00"), at(5, "09:30"))
        booked = await book(client, slot["id"], "pat-arriving")
        key = unique("checkin")
        data = await client.ok("appointment.check-in", {"appointmentId": booked["id"]}, headers=key_header(key))
        assert data["status"] == "checked-in" and data["version"] == 2
        event = await expect_event(client, key, "checkin.completed", f"appointments/{booked['id']}", version=2)
        assert event["data"]["status"] == "checked-in"
        assert (await appointment(client, booked["id"]))["status"] == "checked-in"
        again = await client.command("appointment.check-in", {"appointmentId": booked["id"]})
        refused(again, "INVALID_STATUS_TRANSITION", 409)
        missing = await client.command("appointment.check-in", {"appointmentId": "ap-000000000000-nothing"})
        refused(missing, "APPOINTMENT_NOT_FOUND", 404)


# --- CreateSchedule -----------------------------------------------------------------------------


async def test_create_schedule_with_availability_pattern_opens_its_slots(service: Any) -> None:
    async with Client(service) as client:
        actor = unique("Practitioner/pattern")
        pattern = {
            "windows": [{"daysOfWeek": ["mon", "wed"], "startTime": "09:00:00", "endTime": "11:00:00"}],
            "slotMinutes": 30,
            "timezone": "Europe/Berlin",
        }
        key = unique("schedule")
        schedule = await client.ok(
            "schedule.create",
            {
                "actor": {"reference": actor, "type": "Practitioner"},
                "locationId": LOCATION,
                "serviceType": SERVICE,
                "planningHorizon": HORIZON,
                "availabilityPattern": pattern,
            },
            headers=key_header(key),
        )
        assert schedule["version"] == 1 and schedule["active"] is True
        assert schedule["actor"] == {"reference": actor, "type": "Practitioner"}

        # 09:00-11:00 Berlin (UTC+1 in March before the DST change) on Monday 1 and Wednesday 3 March
        expected = sorted(at(day, hhmm) for day in (1, 3) for hhmm in ("08:00", "08:30", "09:00", "09:30"))
        await expect_event(client, key, "schedule.published", f"schedules/{schedule['id']}", version=1)
        seen = await client.events(
            f"{EVENTS}.slot.opened", lambda es: sum(e["causationid"] == key for e in es) >= len(expected)
        )
        opened = [e for e, _ in seen if e["causationid"] == key]
        assert len(opened) == len(expected) and len({e["id"] for e in opened}) == len(expected)
        assert all(e["subject"] == f"slots/{e['data']['id']}" and e["data"]["version"] == 1 for e in opened)
        assert all(e["data"]["scheduleId"] == schedule["id"] and e["tenantid"] == "t1" for e in opened)
        assert sorted(datetime.fromisoformat(e["data"]["start"]) for e in opened) == [
            datetime.fromisoformat(s) for s in expected
        ]

        slots = await slots_of(client, schedule["id"])
        assert {s["id"] for s in slots.values()} == {e["data"]["id"] for e in opened}
        assert all(s["status"] == "free" for s in slots.values())
        starts = [datetime.fromisoformat(s["start"]) for s in slots.values()]
        assert sorted(starts) == [datetime.fromisoformat(s) for s in expected]
        status, body, headers = await client.get(f"/schedules/{schedule['id']}")
        assert status == 200 and headers["ETag"] == '"1"'
        assert body["data"]["availabilityPattern"]["slotMinutes"] == 30
        assert body["data"]["planningHorizon"] == schedule["planningHorizon"]
        status, body, _ = await client.get("/schedules", actorId=actor)
        assert status == 200 and [s["id"] for s in body["data"]] == [schedule["id"]]


# --- AddScheduleException -----------------------------------------------------------------------


async def test_add_schedule_exception_blocks_free_slots_and_lists_booked_ones(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)
        free_inside = await make_slot(client, schedule["id"], at(4, "09:00"), at(4, "09:30"))
        booked_inside = await make_slot(client, schedule["id"], at(4, "09:30"), at(4, "10:00"))
        outside = await make_slot(client, schedule["id"], at(4, "11:00"), at(4, "11:30"))
        booked = await book(client, booked_inside["id"], "pat-conflict")

        key = unique("exception")
        data = await client.ok(
            "schedule.add-exception",
            {"scheduleId": schedule["id"], "start": at(4, "09:00"), "end": at(4, "10:30"), "reason": "staff training"},
            headers=key_header(key),
        )
        assert data["id"] == schedule["id"] and data["version"] == 2
        assert [c["id"] for c in data["conflicts"]] == [booked["id"]]
        assert data["conflicts"][0]["status"] == "booked"
        assert len(data["exceptions"]) == 1 and data["exceptions"][0]["reason"] == "staff training"
        assert same_time(data["exceptions"][0]["start"], at(4, "09:00"))

        slots = await slots_of(client, schedule["id"])
        assert slots[free_inside["id"]]["status"] == "busy-unavailable"
        assert slots[booked_inside["id"]]["status"] == "busy"
        assert slots[outside["id"]]["status"] == "free"
        assert (await appointment(client, booked["id"]))["status"] == "booked"  # never silently cancelled
        status, body, _ = await client.get(f"/schedules/{schedule['id']}")
        assert status == 200 and body["data"]["version"] == 2 and len(body["data"]["exceptions"]) == 1

        # slot.updated for the slot it closed (CONTRACT section 9), nothing for the held one; a slot created
        # inside it is unavailable; a cancelled one inside it stays unavailable
        after = await marker(client, schedule["id"], at(4, "10:00"), at(4, "10:30"))
        caused = await caused_by(client, key, before=after)
        assert [(e["type"], e["data"]["id"], e["data"]["status"]) for e in caused] == [
            ("slot.updated", free_inside["id"], "busy-unavailable")
        ]
        await client.ok("appointment.cancel", {"appointmentId": booked["id"]})
        slots = await slots_of(client, schedule["id"])
        assert slots[booked_inside["id"]]["status"] == "busy-unavailable"
        assert [s["status"] for s in slots.values() if same_time(s["start"], at(4, "10:00"))] == ["busy-unavailable"]


# --- CreateSlot ---------------------------------------------------------------------------------


async def test_create_slot(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)
        key = unique("slot")
        slot = await client.ok(
            "slot.create",
            {"scheduleId": schedule["id"], "start": "2027-03-05T10:00:00+01:00", "end": "2027-03-05T10:20:00+01:00"},
            headers=key_header(key),
        )
        assert slot["scheduleId"] == schedule["id"] and slot["status"] == "free" and slot["version"] == 1
        assert slot["overbooked"] is False and same_time(slot["start"], at(5, "09:00"))
        event = await expect_event(client, key, "slot.opened", f"slots/{slot['id']}", version=1)
        assert event["data"]["status"] == "free"
        assert list(await slots_of(client, schedule["id"])) == [slot["id"]]

        overlap = await client.command(
            "slot.create", {"scheduleId": schedule["id"], "start": at(5, "09:10"), "end": at(5, "09:40")}
        )
        error = refused(overlap, "VALIDATION_FAILED", 400)
        assert [d["field"] for d in error["details"]] == ["start"]
        backwards = await client.command(
            "slot.create", {"scheduleId": schedule["id"], "start": at(5, "12:00"), "end": at(5, "11:00")}
        )
        assert "end" in {d["field"] for d in refused(backwards, "VALIDATION_FAILED", 400)["details"]}
        outside = await client.command(
            "slot.create",
            {"scheduleId": schedule["id"], "start": "2027-04-01T09:00:00Z", "end": "2027-04-01T09:30:00Z"},
        )
        refused(outside, "VALIDATION_FAILED", 400)
        unknown = await client.command(
            "slot.create", {"scheduleId": "sc-000000000000-nothing", "start": at(5, "09:00"), "end": at(5, "09:30")}
        )
        refused(unknown, "SCHEDULE_NOT_FOUND", 404)
        assert list(await slots_of(client, schedule["id"])) == [slot["id"]]


# --- AddToWaitlist / FulfillWaitlistEntry -------------------------------------------------------


async def test_add_to_waitlist_and_fulfill_the_entry(service: Any) -> None:
    async with Client(service) as client:
        actor = unique("Practitioner/waitlist")
        schedule = await make_schedule(client, actor)
        add_key = unique("wl-add")
        entry = await client.ok(
            "waitlist.add",
            {
                "patientId": "pat-waiting",
                "providerId": actor,
                "locationId": LOCATION,
                "serviceType": SERVICE,
                "requestedPeriod": {"start": at(1, "08:00"), "end": at(5, "18:00")},
                "priority": 3,
            },
            headers=key_header(add_key),
        )
        assert entry["status"] == "waiting" and entry["version"] == 1 and entry["priority"] == 3
        assert entry["patientId"] == "pat-waiting" and entry["providerId"] == actor and "createdAt" in entry
        assert (await waitlist(client, "waiting"))[entry["id"]] == entry

        slot = await make_slot(client, schedule["id"], at(3, "14:00"), at(3, "14:30"))
        booked = await book(client, slot["id"], "pat-waiting")
        fulfil_key = unique("wl-fulfil")
        fulfilled = await client.ok(
            "waitlist.fulfill", {"entryId": entry["id"], "appointmentId": booked["id"]}, headers=key_header(fulfil_key)
        )
        assert fulfilled["status"] == "fulfilled" and fulfilled["version"] == 2
        assert fulfilled["appointmentId"] == booked["id"]
        event = await expect_event(client, fulfil_key, "waitlist.fulfilled", f"waitlist/{entry['id']}", version=2)
        assert event["data"]["appointmentId"] == booked["id"]
        assert entry["id"] in await waitlist(client, "fulfilled")
        assert entry["id"] not in await waitlist(client, "waiting")

        again = await client.command("waitlist.fulfill", {"entryId": entry["id"], "appointmentId": booked["id"]})
        refused(again, "INVALID_STATUS_TRANSITION", 409)
        missing = await client.command(
            "waitlist.fulfill", {"entryId": "wl-000000000000-nothing", "appointmentId": booked["id"]}
        )
        refused(missing, "WAITLIST_ENTRY_NOT_FOUND", 404)
        # adding to the waitlist emits nothing
        after = await marker(client, schedule["id"], at(3, "16:00"), at(3, "16:30"))
        assert await caused_by(client, add_key, before=after) == []


# --- BridgePortalAppointment --------------------------------------------------------------------


async def portal_request(client: Client, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """Publish a portal request (a stream keeps it until the bridge takes it; a request gets the stream's ack),
    then its outcome as a reply: the appointment its `appointment.created` event carries, or its dead letter's
    reply."""
    ack = await client.nc.request(
        "portal.appointment.requested", json.dumps(body).encode(), timeout=15, headers=headers
    )
    assert json.loads(ack.data)["stream"] == "SCHEDULING_INPUTS"
    return await portal_outcome(client, body["requestId"])


async def portal_outcome(client: Client, request_id: str) -> dict[str, Any]:
    async def outcome() -> dict[str, Any] | None:
        for event in await client.stored(f"{EVENTS}.appointment.created"):
            if event["causationid"] == request_id:
                return {"ok": True, "data": event["data"]}
        for letter in await client.stored("scheduling.dlq.portal.appointment.requested", stream="SCHEDULING_DLQ"):
            if letter.get("commandId") == f"portal:{request_id}":
                reply: dict[str, Any] = letter["reply"]
                return reply
        return None

    found: dict[str, Any] = await eventually(outcome, within=30, interval=0.2)
    return found


async def test_portal_request_becomes_a_proposed_appointment_once(service: Any) -> None:
    async with Client(service) as client:
        actor = unique("Practitioner/portal")
        schedule = await make_schedule(client, actor)
        slot = await make_slot(client, schedule["id"], at(1, "13:00"), at(1, "13:30"))
        request_id = unique("portal-req")
        body = {"requestId": request_id, "patientId": "pat-portal", "slotId": slot["id"], "serviceType": SERVICE}
        portal_auth = service.auth(sub="patient-portal")

        first = await portal_request(client, body, portal_auth)
        assert first["ok"] is True, first
        proposed = first["data"]
        assert proposed["status"] == "proposed" and proposed["slotId"] == slot["id"] and proposed["version"] == 1
        assert proposed["patientId"] == "pat-portal" and proposed["serviceType"] == SERVICE
        subject = f"appointments/{proposed['id']}"
        seen = await client.events(f"{EVENTS}.appointment.created", lambda es: any(e["subject"] == subject for e in es))
        event = next(e for e, _ in seen if e["subject"] == subject)
        assert event["data"]["status"] == "proposed" and event["tenantid"] == "t1"
        assert request_id in event["causationid"]
        assert (await slots_of(client, schedule["id"]))[slot["id"]]["status"] == "busy-tentative"
        assert (await appointment(client, proposed["id"]))["status"] == "proposed"

        # the same request again (publish, then request): the first reply, nothing more
        await client.nc.publish("portal.appointment.requested", json.dumps(body).encode(), headers=portal_auth)
        assert await portal_request(client, body, portal_auth) == first
        other = await portal_request(client, {**body, "requestId": unique("portal-req")}, portal_auth)
        refused(other, "SLOT_NOT_AVAILABLE", 409)
        after = await marker(client, schedule["id"], at(1, "16:00"), at(1, "16:30"))
        seen = await client.events(f"{EVENTS}.>", lambda es: any(e["causationid"] == after for e in es))
        assert [e["type"] for e, _ in seen if e["subject"] == subject] == ["appointment.created"]

        # by provider and time instead of slot id
        window_slot = await make_slot(client, schedule["id"], at(1, "14:00"), at(1, "14:30"))
        by_window = await portal_request(
            client,
            {
                "requestId": unique("portal-req"),
                "patientId": "pat-portal-2",
                "providerId": actor,
                "start": at(1, "14:00"),
                "end": at(1, "14:30"),
                "serviceType": SERVICE,
                "note": "first visit",
            },
            portal_auth,
        )
        assert by_window["ok"] is True, by_window
        assert by_window["data"]["slotId"] == window_slot["id"] and by_window["data"]["status"] == "proposed"

        # confirming it makes the tentative slot busy
        key = unique("confirm")
        await client.ok(
            "appointment.status", {"appointmentId": proposed["id"], "status": "booked"}, headers=key_header(key)
        )
        await expect_event(client, key, "appointment.booked", subject, version=2)
        assert (await slots_of(client, schedule["id"]))[slot["id"]]["status"] == "busy"


async def test_portal_event_causation_is_the_request_id(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)
        slot = await make_slot(client, schedule["id"], at(2, "13:00"), at(2, "13:30"))
        request_id = unique("portal-req")
        body = {"requestId": request_id, "patientId": "pat-portal", "slotId": slot["id"], "serviceType": SERVICE}
        reply = await portal_request(client, body, service.auth())
        assert reply["ok"] is True, reply
        subject = f"appointments/{reply['data']['id']}"
        seen = await client.events(f"{EVENTS}.appointment.created", lambda es: any(e["subject"] == subject for e in es))
        assert [e["causationid"] for e, _ in seen if e["subject"] == subject] == [request_id]


# --- optimistic locking -------------------------------------------------------------------------


async def test_expected_version_is_an_optimistic_lock(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client, bookingPolicy=EARLY_CHECK_IN)
        slot = await make_slot(client, schedule["id"], at(5, "13:00"), at(5, "13:30"))
        other = await make_slot(client, schedule["id"], at(5, "14:00"), at(5, "14:30"))
        booked = await book(client, slot["id"])
        aid = booked["id"]

        stale = await client.command("appointment.cancel", {"appointmentId": aid, "expectedVersion": 2})
        error = refused(stale, "OPTIMISTIC_LOCK_CONFLICT", 409)
        assert error["details"] == {"expectedVersion": 2, "currentVersion": 1}
        stale = await client.command(
            "appointment.reschedule", {"appointmentId": aid, "newSlotId": other["id"], "expectedVersion": 3}
        )
        refused(stale, "OPTIMISTIC_LOCK_CONFLICT", 409)
        current = await appointment(client, aid)
        assert current["status"] == "booked" and current["version"] == 1 and current["slotId"] == slot["id"]

        checked_in = await client.ok("appointment.check-in", {"appointmentId": aid, "expectedVersion": 1})
        assert checked_in["version"] == 2
        stale = await client.command(
            "appointment.status", {"appointmentId": aid, "status": "arrived", "expectedVersion": 1}
        )
        refused(stale, "OPTIMISTIC_LOCK_CONFLICT", 409)
        arrived = await client.ok(
            "appointment.status", {"appointmentId": aid, "status": "arrived", "expectedVersion": 2}
        )
        assert arrived["status"] == "arrived" and arrived["version"] == 3


async def test_if_match_is_an_optimistic_lock_over_http(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)
        slot = await make_slot(client, schedule["id"], at(5, "15:00"), at(5, "15:30"))
        booked = await book(client, slot["id"])
        auth = service.auth()
        status, body, _ = await client.post(
            f"/appointments/{booked['id']}/cancel", {"reason": "stale"}, headers={**auth, "If-Match": '"2"'}
        )
        assert status == 409 and body["ok"] is False
        assert body["error"]["code"] == "OPTIMISTIC_LOCK_CONFLICT" and body["error"]["status"] == 409
        assert (await appointment(client, booked["id"]))["status"] == "booked"
        status, body, headers = await client.post(
            f"/appointments/{booked['id']}/cancel", {"reason": "fresh"}, headers={**auth, "If-Match": '"1"'}
        )
        assert status == 200 and body["ok"] is True and body["data"]["status"] == "cancelled"
        assert headers["ETag"] == '"2"'
        status, body, _ = await client.post(
            f"/appointments/{booked['id']}/cancel", {}, headers={**auth, "If-Match": "not-a-version"}
        )
        assert status == 400 and body["error"]["code"] == "VALIDATION_FAILED"


# --- the HTTP form of the commands --------------------------------------------------------------


async def test_commands_over_http(service: Any) -> None:
    async with Client(service) as client:
        auth = service.auth()
        actor = unique("Practitioner/http")
        status, body, headers = await client.post(
            "/schedules",
            {
                "actor": {"reference": actor, "type": "Practitioner"},
                "locationId": LOCATION,
                "serviceType": SERVICE,
                "planningHorizon": HORIZON,
                # patients book (self-book below) up to ten years ahead; check-in opens a year before
                "bookingPolicy": {"maxAdvanceDays": 3660, **EARLY_CHECK_IN},
            },
        )
        assert status == 201 and body["ok"] is True and set(body) == {"ok", "data"}, body
        schedule = body["data"]
        assert schedule["version"] == 1 and headers["ETag"] == '"1"'

        slots = []
        for start, end in (
            (at(2, "09:00"), at(2, "09:30")),
            (at(2, "09:30"), at(2, "10:00")),
            (at(2, "10:00"), at(2, "10:30")),
        ):
            status, body, _ = await client.post(f"/schedules/{schedule['id']}/slots", {"start": start, "end": end})
            assert status == 201 and body["ok"] is True and body["data"]["scheduleId"] == schedule["id"], body
            slots.append(body["data"])
        status, body, _ = await client.post(
            f"/schedules/{schedule['id']}/slots", {"start": at(2, "09:15"), "end": at(2, "09:45")}
        )
        assert status == 400 and body["ok"] is False and body["error"]["code"] == "VALIDATION_FAILED"

        # POST /appointments with an Idempotency-Key: the repeat gets the same body
        key = unique("http-book")
        book_body = {"slotId": slots[0]["id"], "patientId": "pat-http"}
        status, first, _ = await client.post("/appointments", book_body, headers={**auth, "Idempotency-Key": key})
        assert status == 201 and first["ok"] is True and first["data"]["status"] == "booked", first
        status, repeat, _ = await client.post("/appointments", book_body, headers={**auth, "Idempotency-Key": key})
        assert status == 201 and repeat == first
        booked = first["data"]
        await expect_event(client, key, "appointment.created", f"appointments/{booked['id']}", version=1)
        status, body, _ = await client.post("/appointments", {**book_body, "patientId": "pat-late"})
        assert status == 409 and body == {
            "ok": False,
            "error": {"code": "SLOT_NOT_AVAILABLE", "status": 409, "message": f"slot {slots[0]['id']} is busy"},
        }
        status, body, _ = await client.post("/appointments", {"slotId": slots[1]["id"]})
        assert status == 400 and body["error"]["code"] == "VALIDATION_FAILED"
        assert "patientId" in {d["field"] for d in body["error"]["details"]}
        status, body, _ = await client.post("/appointments", book_body, headers=service.auth(scope="scheduling:read"))
        assert status == 403 and body["error"]["code"] == "FORBIDDEN"
        async with client.http.post("/appointments", data=b"{nope", headers=auth) as response:  # type: ignore[union-attr]
            assert response.status == 400 and (await response.json())["error"]["code"] == "VALIDATION_FAILED"

        # self-book with a patient token; a token without patient_id is refused
        pat_self = unique("pat-self")
        patient = service.auth(patient_id=pat_self)
        status, body, _ = await client.post("/appointments/self-book", {"slotId": slots[1]["id"]}, headers=patient)
        assert status == 201 and body["ok"] is True, body
        self_booked = body["data"]
        assert self_booked["patientId"] == pat_self and self_booked["status"] == "booked"
        status, body, _ = await client.post("/appointments/self-book", {"slotId": slots[2]["id"]})
        assert status == 400 and body["ok"] is False
        assert body["error"]["code"] == "PATIENT_ID_CLAIM_REQUIRED" and body["error"]["status"] == 400
        assert (await slots_of(client, schedule["id"]))[slots[2]["id"]]["status"] == "free"
        status, body, _ = await client.post(
            "/appointments", {"slotId": slots[2]["id"], "patientId": "pat-someone-else"}, headers=patient
        )
        assert status == 403 and body["error"]["code"] == "FORBIDDEN"  # a patient token acts only for its patient

        # reschedule, status, check-in and cancel by route
        status, body, headers = await client.post(
            f"/appointments/{booked['id']}/reschedule",
            {"newSlotId": slots[2]["id"]},
            headers={**auth, "If-Match": '"1"'},
        )
        assert status == 200 and body["data"]["slotId"] == slots[2]["id"] and headers["ETag"] == '"3"', body
        status, body, _ = await client.post(f"/appointments/{booked['id']}/check-in", {})
        assert status == 200 and body["data"]["status"] == "checked-in"
        status, body, _ = await client.post(f"/appointments/{booked['id']}/status", {"status": "arrived"})
        assert status == 200 and body["data"]["status"] == "arrived" and body["data"]["version"] == 5
        status, body, _ = await client.post(f"/appointments/{booked['id']}/status", {"status": "booked"})
        assert status == 409 and body["error"]["code"] == "INVALID_STATUS_TRANSITION"
        status, body, _ = await client.post(f"/appointments/{self_booked['id']}/cancel", {"reason": "changed plans"})
        assert status == 200 and body["data"]["status"] == "cancelled"
        assert body["data"]["cancellationReason"] == "changed plans"
        status, body, _ = await client.post("/appointments/ap-000000000000-nothing/cancel", {})
        assert status == 404 and body["error"]["code"] == "APPOINTMENT_NOT_FOUND"

        # exception, waitlist and fulfilment by route
        status, body, _ = await client.post(
            f"/schedules/{schedule['id']}/exceptions", {"start": at(2, "09:00"), "end": at(2, "12:00")}
        )
        assert status == 200 and [c["id"] for c in body["data"]["conflicts"]] == [booked["id"]], body
        assert (await slots_of(client, schedule["id"]))[slots[1]["id"]]["status"] == "busy-unavailable"
        status, body, _ = await client.post(
            "/waitlist",
            {
                "patientId": "pat-http",
                "providerId": actor,
                "serviceType": SERVICE,
                "requestedPeriod": {"start": at(1, "00:00"), "end": at(6, "00:00")},
            },
        )
        assert status == 201 and body["data"]["status"] == "waiting", body
        entry = body["data"]
        status, body, _ = await client.post(f"/waitlist/{entry['id']}/fulfill", {"appointmentId": booked["id"]})
        assert status == 200 and body["data"]["status"] == "fulfilled", body
        status, body, _ = await client.post(
            "/waitlist/wl-000000000000-nothing/fulfill", {"appointmentId": booked["id"]}
        )
        assert status == 404 and body["error"]["code"] == "WAITLIST_ENTRY_NOT_FOUND"

        # the query side agrees
        assert (await appointment(client, booked["id"]))["status"] == "arrived"
        status, body, _ = await client.get(f"/patients/{pat_self}/appointments", headers=patient)
        assert status == 200 and [a["id"] for a in body["data"]] == [self_booked["id"]]
        status, body, _ = await client.post(
            "/schedules/sc-000000000000-nothing/exceptions", {"start": at(2, "09:00"), "end": at(2, "12:00")}
        )
        assert status == 404 and body["error"]["code"] == "SCHEDULE_NOT_FOUND"
        # the repeated POST /appointments emitted nothing more
        after = await marker(client, schedule["id"], at(2, "16:00"), at(2, "16:30"))
        assert [e["type"] for e in await caused_by(client, key, before=after)] == ["appointment.created"]


# --- fire-and-forget ----------------------------------------------------------------------------


async def test_fire_and_forget_commands_emit_their_event_or_a_dead_letter(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)

        # malformed ones first: the worker goes on to the valid ones after them
        not_json, wrong_types, no_token = unique("ff-bad"), unique("ff-types"), unique("ff-anon")
        await client.publish("appointment.book", b"{nope", headers=key_header(not_json))
        await client.publish("appointment.book", {"slotId": 5}, headers=key_header(wrong_types))
        await client.nc.publish("scheduling.cmd.slot.create", b"{}", headers=key_header(no_token))

        slot_key, book_key, busy_key = unique("ff-slot"), unique("ff-book"), unique("ff-busy")
        body = {"scheduleId": schedule["id"], "start": at(3, "09:00"), "end": at(3, "09:30")}
        await client.publish("slot.create", body, headers=key_header(slot_key))
        seen = await client.events(f"{EVENTS}.slot.opened", lambda es: any(e["causationid"] == slot_key for e in es))
        opened = next(e for e, _ in seen if e["causationid"] == slot_key)
        assert opened["tenantid"] == "t1" and opened["data"]["scheduleId"] == schedule["id"]
        slot_id = opened["data"]["id"]
        await client.publish(
            "appointment.book", {"slotId": slot_id, "patientId": "pat-ff"}, headers=key_header(book_key)
        )
        created = await client.events(
            f"{EVENTS}.appointment.created", lambda es: any(e["causationid"] == book_key for e in es)
        )
        appointment_id = next(e["data"]["id"] for e, _ in created if e["causationid"] == book_key)

        async def busy() -> bool:
            return (await slots_of(client, schedule["id"]))[slot_id]["status"] == "busy"

        await eventually(busy)
        assert (await appointment(client, appointment_id))["patientId"] == "pat-ff"
        # a refusal without a reply inbox is a dead letter too
        await client.publish(
            "appointment.book", {"slotId": slot_id, "patientId": "pat-late"}, headers=key_header(busy_key)
        )

        book_letters = await client.events(
            "scheduling.dlq.appointment.book",
            lambda es: {not_json, wrong_types, busy_key} <= {e.get("commandId") for e in es},
            stream="SCHEDULING_DLQ",
        )
        letters = {e["commandId"]: e for e, _ in book_letters}
        for key, outcome in (
            (not_json, "VALIDATION_FAILED"),
            (wrong_types, "VALIDATION_FAILED"),
            (busy_key, "SLOT_NOT_AVAILABLE"),
        ):
            letter = letters[key]
            assert letter["type"] == "appointment.book" and letter["tenant"] == "t1", letter
            assert letter["outcome"] == outcome and letter["reply"]["error"]["code"] == outcome, letter
        assert {d["field"] for d in letters[wrong_types]["reply"]["error"]["details"]} >= {"slotId", "patientId"}
        slot_letters = await client.events(
            "scheduling.dlq.slot.create",
            lambda es: any(e.get("commandId") == no_token for e in es),
            stream="SCHEDULING_DLQ",
        )
        letter = next(e for e, _ in slot_letters if e.get("commandId") == no_token)
        assert letter["outcome"] == "UNAUTHENTICATED"
        # and the refused booking changed nothing (held, then booked: version 3)
        assert (await slots_of(client, schedule["id"]))[slot_id]["version"] == 3
