"""The query side over the contract (CONTRACT section 6): every route of the HTTP view, end to end.

Data is made with NATS commands; each assertion on a query made right after a command's reply is made
once, without retrying (read-your-writes). Every test uses its own actors, locations and patients, and
the tenant-wide lists (waitlist, all schedules) use a tenant of their own.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from conftest import unique
from support.client import Client, eventually

HORIZON = {"start": "2027-03-01T00:00:00Z", "end": "2027-03-06T00:00:00Z"}  # Monday to Friday
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
SERVICE_TYPE = "general-practice"
ALL = "500"


def pattern(start: str = "09:00", end: str = "10:00", minutes: int = 15, tz: str = "UTC") -> dict[str, Any]:
    return {
        "windows": [{"daysOfWeek": WEEKDAYS, "startTime": start, "endTime": end}],
        "slotMinutes": minutes,
        "timezone": tz,
    }


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def cursor_of(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


async def make_schedule(
    client: Client,
    *,
    actor: str | None = None,
    location: str | None = None,
    tenant: str = "t1",
    horizon: dict[str, str] = HORIZON,
    with_pattern: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "actor": {"reference": actor or unique("Practitioner/p"), "type": "Practitioner"},
        "locationId": location or unique("clinic"),
        "serviceType": SERVICE_TYPE,
        "planningHorizon": horizon,
    }
    if with_pattern:
        body["availabilityPattern"] = pattern()
    return await client.ok("schedule.create", body, tenant=tenant)


async def slots_of(client: Client, schedule_id: str, tenant: str = "t1") -> list[dict[str, Any]]:
    status, body, _ = await client.get(
        f"/schedules/{schedule_id}/slots", headers=client.service.auth(tenant), limit=ALL
    )
    assert status == 200, body
    return list(body["data"])


def slot_at(slots: list[dict[str, Any]], start: str) -> dict[str, Any]:
    return next(s for s in slots if ts(s["start"]) == ts(start))


async def book(client: Client, slot: dict[str, Any], patient: str, tenant: str = "t1", **extra: Any) -> dict[str, Any]:
    return await client.ok("appointment.book", {"slotId": slot["id"], "patientId": patient, **extra}, tenant=tenant)


async def walk(
    client: Client, path: str, limit: int, headers: dict[str, str] | None = None, **params: str
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following nextCursor; checks the page sizes and that the last cursor is null."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        status, body, _ = await client.get(path, headers=headers, **query)
        assert status == 200, body
        assert set(body) == {"data", "nextCursor"}
        pages.append(body["data"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
        assert len(body["data"]) == limit, "a page with a next cursor is full"
        assert len(pages) < 100, "the cursor does not advance"
    assert len(pages[-1]) <= limit
    return pages


async def assert_pages_cover(
    client: Client, path: str, limit: int, headers: dict[str, str] | None = None, **params: str
) -> list[dict[str, Any]]:
    """Walking the pages yields exactly the full list, in order, without duplicates or gaps."""
    status, body, _ = await client.get(path, headers=headers, limit=ALL, **params)
    assert status == 200 and body["nextCursor"] is None
    full = body["data"]
    pages = await walk(client, path, limit, headers=headers, **params)
    walked = [item for page in pages for item in page]
    assert [i["id"] for i in walked] == [i["id"] for i in full]
    assert len({i["id"] for i in walked}) == len(walked)
    expected_pages = max(1, -(-len(full) // limit))
    assert len(pages) == expected_pages
    return list(full)


def error_of(status: int, body: Any, code: str, http_status: int) -> None:
    assert status == http_status, body
    assert body["ok"] is False and body["error"]["code"] == code and body["error"]["status"] == http_status


# --- SearchAvailableSlots ------------------------------------------------------------------------


async def test_search_available_slots_lists_free_slots_starting_in_the_range_by_start(service: Any) -> None:
    async with Client(service) as client:
        location = unique("clinic")
        first = await make_schedule(client, location=location)
        second = await make_schedule(client, location=location)
        assert first["slotCount"] == 20 and second["slotCount"] == 20
        provider = first["actor"]["reference"]
        slots = await slots_of(client, first["id"])
        booked = slot_at(slots, "2027-03-02T09:15:00Z")
        appointment = await book(client, booked, unique("pat"))

        window = {"from": "2027-03-02T09:00:00Z", "to": "2027-03-03T09:15:00Z"}
        status, body, _ = await client.get("/slots", providerId=provider, **window)
        assert status == 200 and body["nextCursor"] is None
        # the booked slot is gone at once; the slot starting exactly at `to` is outside [from, to)
        assert [ts(s["start"]) for s in body["data"]] == [
            ts("2027-03-02T09:00:00Z"),
            ts("2027-03-02T09:30:00Z"),
            ts("2027-03-02T09:45:00Z"),
            ts("2027-03-03T09:00:00Z"),
        ]
        assert all(s["status"] == "free" and s["providerId"] == provider for s in body["data"])
        assert all(s["scheduleId"] == first["id"] for s in body["data"])

        # the same instants written with another offset
        status, same, _ = await client.get(
            "/slots", providerId=provider, **{"from": "2027-03-02T10:00:00+01:00", "to": "2027-03-03T10:15:00+01:00"}
        )
        assert status == 200 and same["data"] == body["data"]

        # by location: both schedules' free slots, ordered by start (then id)
        status, by_location, _ = await client.get("/slots", locationId=location, **window)
        assert status == 200
        starts = [(ts(s["start"]), s["id"]) for s in by_location["data"]]
        assert starts == sorted(starts) and len(starts) == 4 + 5
        assert {s["scheduleId"] for s in by_location["data"]} == {first["id"], second["id"]}
        assert booked["id"] not in {s["id"] for s in by_location["data"]}

        # provider and location together narrow to one schedule
        status, both, _ = await client.get("/slots", providerId=provider, locationId=location, **window)
        assert status == 200 and both["data"] == body["data"]

        # pagination over the whole week of one provider: 20 - 1 free slots
        week = {"from": HORIZON["start"], "to": HORIZON["end"]}
        full = await assert_pages_cover(client, "/slots", 7, providerId=provider, **week)
        assert len(full) == 19 and [ts(s["start"]) for s in full] == sorted(ts(s["start"]) for s in full)

        # cancelling gives the slot back, visible at once
        await client.ok("appointment.cancel", {"appointmentId": appointment["id"]})
        status, body, _ = await client.get("/slots", providerId=provider, **window)
        assert status == 200 and booked["id"] in [s["id"] for s in body["data"]]

        # another tenant sees nothing of it
        status, other, _ = await client.get("/slots", headers=service.auth("t2"), providerId=provider, **window)
        assert status == 200 and other == {"data": [], "nextCursor": None}


async def test_without_filters_the_whole_tenant_is_searched(service: Any) -> None:
    tenant = unique("tenant")
    auth = service.auth(tenant)
    async with Client(service) as client:
        first = await make_schedule(client, tenant=tenant)
        second = await make_schedule(client, tenant=tenant)
        booked = slot_at(await slots_of(client, second["id"], tenant), "2027-03-03T09:30:00Z")
        appointment = await book(client, booked, unique("pat"), tenant=tenant)
        day = {"from": "2027-03-03T00:00:00Z", "to": "2027-03-04T00:00:00Z"}

        status, body, _ = await client.get("/slots", headers=auth, **day)
        assert status == 200 and body["nextCursor"] is None
        assert len(body["data"]) == 4 + 3 and booked["id"] not in {s["id"] for s in body["data"]}
        assert {s["scheduleId"] for s in body["data"]} == {first["id"], second["id"]}
        keys = [(ts(s["start"]), s["id"]) for s in body["data"]]
        assert keys == sorted(keys)
        await assert_pages_cover(client, "/slots", 3, headers=auth, **day)

        status, body, _ = await client.get("/calendar", headers=auth, **day)
        assert status == 200 and [a["id"] for a in body["data"]] == [appointment["id"]]


# --- GetSlotsBySchedule ---------------------------------------------------------------------------


async def test_slots_by_schedule_with_status_filter_and_pages(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)
        slots = await slots_of(client, schedule["id"])
        assert len(slots) == 20 and all(s["status"] == "free" for s in slots)
        assert [ts(s["start"]) for s in slots] == sorted(ts(s["start"]) for s in slots)
        booked = slot_at(slots, "2027-03-01T09:00:00Z")
        await book(client, booked, unique("pat"))
        reply = await client.ok(
            "schedule.add-exception",
            {"scheduleId": schedule["id"], "start": "2027-03-04T00:00:00Z", "end": "2027-03-05T00:00:00Z"},
        )
        assert reply["version"] == 2

        path = f"/schedules/{schedule['id']}/slots"
        status, busy, _ = await client.get(path, status="busy")
        assert status == 200 and [s["id"] for s in busy["data"]] == [booked["id"]]
        status, blocked, _ = await client.get(path, status="busy-unavailable")
        assert status == 200 and len(blocked["data"]) == 4
        assert all(ts(s["start"]).date().isoformat() == "2027-03-04" for s in blocked["data"])
        status, free, _ = await client.get(path, status="free")
        assert status == 200 and len(free["data"]) == 15
        status, none, _ = await client.get(path, status="entered-in-error")
        assert status == 200 and none == {"data": [], "nextCursor": None}

        # pages that exactly fill: 20 slots by 5 -> four pages, the last with a null cursor
        full = await assert_pages_cover(client, path, 5)
        assert len(full) == 20
        await assert_pages_cover(client, path, 4, status="free")

        status, body, _ = await client.get(path, headers=service.auth("t2"))
        error_of(status, body, "SCHEDULE_NOT_FOUND", 404)
        status, body, _ = await client.get("/schedules/sc-000000000000-nothing/slots")
        error_of(status, body, "SCHEDULE_NOT_FOUND", 404)


# --- GetAppointmentById ---------------------------------------------------------------------------


async def test_get_appointment_with_participants_and_etag(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)
        slot = (await slots_of(client, schedule["id"]))[0]
        patient = unique("pat")
        room = {"reference": unique("Location/room"), "type": "Location"}
        appointment = await book(client, slot, patient, participants=[{"actor": room, "required": False}])
        path = f"/appointments/{appointment['id']}"

        status, body, headers = await client.get(path)
        assert status == 200 and body["ok"] is True
        data = body["data"]
        assert headers["ETag"] == '"1"' and data["version"] == 1
        assert data["id"] == appointment["id"] and data["status"] == "booked" and data["slotId"] == slot["id"]
        assert ts(data["start"]) == ts(slot["start"]) and ts(data["end"]) == ts(slot["end"])
        assert data["patientId"] == patient
        assert [(p["actor"]["reference"], p["actor"]["type"], p["required"]) for p in data["participants"]] == [
            (schedule["actor"]["reference"], "Practitioner", True),
            (f"Patient/{patient}", "Patient", True),
            (room["reference"], "Location", False),
        ]

        cancelled = await client.ok(
            "appointment.cancel", {"appointmentId": appointment["id"], "reason": "patient request"}
        )
        assert cancelled["version"] == 2
        status, body, headers = await client.get(path)
        assert status == 200 and headers["ETag"] == '"2"'
        assert body["data"]["status"] == "cancelled" and body["data"]["cancellationReason"] == "patient request"

        # a patient token reads its own appointment; another patient's does not exist for it
        status, body, _ = await client.get(path, headers=service.auth(scope="scheduling:read", patient_id=patient))
        assert status == 200 and body["data"]["id"] == appointment["id"]
        status, body, _ = await client.get(
            path, headers=service.auth(scope="scheduling:read", patient_id=unique("pat"))
        )
        error_of(status, body, "APPOINTMENT_NOT_FOUND", 404)
        # nor does another tenant's, nor an unknown id
        status, body, _ = await client.get(path, headers=service.auth("t2"))
        error_of(status, body, "APPOINTMENT_NOT_FOUND", 404)
        status, body, _ = await client.get("/appointments/ap-000000000000-nothing")
        error_of(status, body, "APPOINTMENT_NOT_FOUND", 404)


async def test_get_appointment_shows_the_cached_patient_demographics(service: Any) -> None:
    async with Client(service) as client:
        schedule = await make_schedule(client)
        slot = (await slots_of(client, schedule["id"]))[0]
        patient = unique("pat")
        appointment = await book(client, slot, patient)
        registered = {"patientId": patient, "name": "Ada Lovelace", "birthDate": "1815-12-10", "telecom": []}
        await client.nc.publish(
            "registration.patient.registered", json.dumps(registered).encode(), headers=service.auth()
        )

        async def enriched() -> Any:
            status, body, _ = await client.get(f"/appointments/{appointment['id']}")
            return status == 200 and body["data"].get("patient")

        # registration events are not commands: there is no reply to wait for, so wait for the effect
        assert await eventually(enriched) == registered


# --- ListPatientAppointments ----------------------------------------------------------------------


async def test_patient_appointments_by_start_with_status_filter(service: Any) -> None:
    async with Client(service) as client:
        a, b = await make_schedule(client), await make_schedule(client)
        a_slots, b_slots = await slots_of(client, a["id"]), await slots_of(client, b["id"])
        patient, other = unique("pat"), unique("pat")
        late = await book(client, slot_at(a_slots, "2027-03-03T09:00:00Z"), patient)
        early = await book(client, slot_at(b_slots, "2027-03-01T09:30:00Z"), patient)
        middle = await book(client, slot_at(a_slots, "2027-03-02T09:00:00Z"), patient)
        await book(client, slot_at(b_slots, "2027-03-02T09:00:00Z"), other)
        await client.ok("appointment.cancel", {"appointmentId": middle["id"]})

        path = f"/patients/{patient}/appointments"
        status, body, _ = await client.get(path)
        assert status == 200 and body["nextCursor"] is None
        assert [x["id"] for x in body["data"]] == [early["id"], middle["id"], late["id"]]
        assert all(x["patientId"] == patient for x in body["data"])
        status, body, _ = await client.get(path, status="cancelled")
        assert status == 200 and [x["id"] for x in body["data"]] == [middle["id"]]
        status, body, _ = await client.get(path, status="booked")
        assert status == 200 and [x["id"] for x in body["data"]] == [early["id"], late["id"]]
        await assert_pages_cover(client, path, 2)
        await assert_pages_cover(client, path, 1, status="booked")

        # the patient's own token reads the list; another patient's token is refused (docs/decisions.md)
        own = service.auth(scope="scheduling:read", patient_id=patient)
        status, mine, _ = await client.get(path, headers=own)
        assert status == 200 and [x["id"] for x in mine["data"]] == [early["id"], middle["id"], late["id"]]
        status, body, _ = await client.get(f"/patients/{other}/appointments", headers=own)
        error_of(status, body, "FORBIDDEN", 403)

        status, body, _ = await client.get(path, headers=service.auth("t2"))
        assert status == 200 and body == {"data": [], "nextCursor": None}
        status, body, _ = await client.get(f"/patients/{unique('nobody')}/appointments")
        assert status == 200 and body == {"data": [], "nextCursor": None}


# --- GetCalendarView ------------------------------------------------------------------------------


async def test_calendar_by_facility_and_provider_with_start_in_range(service: Any) -> None:
    async with Client(service) as client:
        facility, elsewhere = unique("clinic"), unique("clinic")
        p1 = await make_schedule(client, location=facility)
        p2 = await make_schedule(client, location=facility)
        p3 = await make_schedule(client, location=elsewhere)
        s1, s2, s3 = [await slots_of(client, s["id"]) for s in (p1, p2, p3)]
        a = await book(client, slot_at(s1, "2027-03-02T09:00:00Z"), unique("pat"))
        b = await book(client, slot_at(s2, "2027-03-02T09:30:00Z"), unique("pat"))
        c = await book(client, slot_at(s1, "2027-03-03T09:00:00Z"), unique("pat"))
        d = await book(client, slot_at(s3, "2027-03-02T09:00:00Z"), unique("pat"))
        e = await book(client, slot_at(s2, "2027-03-01T09:45:00Z"), unique("pat"))

        window = {"from": "2027-03-02T00:00:00Z", "to": "2027-03-03T09:00:00Z"}
        status, body, _ = await client.get("/calendar", facilityId=facility, **window)
        assert status == 200 and body["nextCursor"] is None
        # start in [from, to): c starts exactly at `to`, e before `from`, d at another facility
        assert [x["id"] for x in body["data"]] == [a["id"], b["id"]]
        status, body, _ = await client.get("/calendar", providerId=p1["actor"]["reference"], **window)
        assert status == 200 and [x["id"] for x in body["data"]] == [a["id"]]
        status, body, _ = await client.get(
            "/calendar", facilityId=facility, providerId=p2["actor"]["reference"], **window
        )
        assert status == 200 and [x["id"] for x in body["data"]] == [b["id"]]
        status, body, _ = await client.get("/calendar", facilityId=elsewhere, **window)
        assert status == 200 and [x["id"] for x in body["data"]] == [d["id"]]

        week = {"from": HORIZON["start"], "to": HORIZON["end"]}
        full = await assert_pages_cover(client, "/calendar", 2, facilityId=facility, **week)
        assert [x["id"] for x in full] == [e["id"], a["id"], b["id"], c["id"]]

        status, body, _ = await client.get(
            "/calendar", headers=service.auth(scope="scheduling:read", patient_id="pat-1"), facilityId=facility, **week
        )
        error_of(status, body, "FORBIDDEN", 403)
        status, body, _ = await client.get("/calendar", headers=service.auth("t2"), facilityId=facility, **week)
        assert status == 200 and body == {"data": [], "nextCursor": None}


# --- GetSchedule and ListSchedules ----------------------------------------------------------------


async def test_get_schedule_with_etag_and_exceptions(service: Any) -> None:
    async with Client(service) as client:
        created = await make_schedule(client)
        path = f"/schedules/{created['id']}"
        status, body, headers = await client.get(path)
        assert status == 200 and body["ok"] is True and headers["ETag"] == '"1"'
        assert body["data"] == {k: v for k, v in created.items() if k != "slotCount"}
        assert body["data"]["availabilityPattern"]["slotMinutes"] == 15
        assert body["data"]["planningHorizon"] == {"start": "2027-03-01T00:00:00Z", "end": "2027-03-06T00:00:00Z"}

        await client.ok(
            "schedule.add-exception",
            {
                "scheduleId": created["id"],
                "start": "2027-03-02T09:00:00Z",
                "end": "2027-03-02T10:00:00Z",
                "reason": "x",
            },
        )
        status, body, headers = await client.get(path)
        assert status == 200 and headers["ETag"] == '"2"' and body["data"]["version"] == 2
        assert [(ts(x["start"]), x["reason"]) for x in body["data"]["exceptions"]] == [
            (ts("2027-03-02T09:00:00Z"), "x")
        ]

        status, body, _ = await client.get(path, headers=service.auth("t2"))
        error_of(status, body, "SCHEDULE_NOT_FOUND", 404)
        status, body, _ = await client.get("/schedules/sc-000000000000-nothing")
        error_of(status, body, "SCHEDULE_NOT_FOUND", 404)


async def test_list_schedules_by_actor(service: Any) -> None:
    tenant = unique("tenant")
    auth = service.auth(tenant)
    async with Client(service) as client:
        actor = unique("Practitioner/p")
        mine = [
            await make_schedule(
                client,
                actor=actor,
                tenant=tenant,
                with_pattern=False,
                horizon={"start": f"2027-0{m}-01T00:00:00Z", "end": f"2027-0{m}-28T00:00:00Z"},
            )
            for m in (1, 2, 3)
        ]
        theirs = await make_schedule(client, tenant=tenant, with_pattern=False)

        status, body, _ = await client.get("/schedules", headers=auth, actorId=actor)
        assert status == 200 and body["nextCursor"] is None
        assert [s["id"] for s in body["data"]] == sorted(s["id"] for s in mine)
        assert all(s["actor"]["reference"] == actor for s in body["data"])
        pages = await walk(client, "/schedules", 2, headers=auth, actorId=actor)
        assert [len(p) for p in pages] == [2, 1]
        assert [s["id"] for p in pages for s in p] == sorted(s["id"] for s in mine)

        # the whole tenant, without a filter
        pages = await walk(client, "/schedules", 3, headers=auth)
        assert [s["id"] for p in pages for s in p] == sorted(s["id"] for s in [*mine, theirs])

        status, body, _ = await client.get("/schedules", headers=service.auth("t2"), actorId=actor)
        assert status == 200 and body == {"data": [], "nextCursor": None}


# --- GetWaitlist ----------------------------------------------------------------------------------


async def test_waitlist_best_first_with_status_filter_and_patient_view(service: Any) -> None:
    tenant = unique("tenant")
    auth = service.auth(tenant)
    async with Client(service) as client:
        schedule = await make_schedule(client, tenant=tenant)
        provider = schedule["actor"]["reference"]
        p1, p2, p3 = unique("pat"), unique("pat"), unique("pat")

        async def add(patient: str, priority: int, with_provider: bool = True) -> dict[str, Any]:
            body: dict[str, Any] = {
                "patientId": patient,
                "serviceType": SERVICE_TYPE,
                "requestedPeriod": HORIZON,
                "priority": priority,
            }
            if with_provider:
                body["providerId"] = provider
            return await client.ok("waitlist.add", body, tenant=tenant)

        e1 = await add(p1, 1)
        e2 = await add(p2, 5)
        e3 = await add(p1, 5, with_provider=False)
        e4 = await add(p3, 0)
        status, body, _ = await client.get("/waitlist", headers=auth)
        assert status == 200 and body["nextCursor"] is None
        # best first: highest priority, then the oldest
        assert [x["id"] for x in body["data"]] == [e2["id"], e3["id"], e1["id"], e4["id"]]
        assert all(x["status"] == "waiting" for x in body["data"])
        pages = await walk(client, "/waitlist", 3, headers=auth)
        assert [[x["id"] for x in p] for p in pages] == [[e2["id"], e3["id"], e1["id"]], [e4["id"]]]

        # a freed slot of the provider is offered to its best matching waiting entry
        slot = (await slots_of(client, schedule["id"], tenant))[0]
        taken = await book(client, slot, unique("pat"), tenant=tenant)
        await client.ok("appointment.cancel", {"appointmentId": taken["id"]}, tenant=tenant)
        status, body, _ = await client.get("/waitlist", headers=auth, status="offered")
        assert status == 200 and [(x["id"], x["offeredSlotId"]) for x in body["data"]] == [(e2["id"], slot["id"])]
        status, body, _ = await client.get("/waitlist", headers=auth, status="waiting")
        assert status == 200 and [x["id"] for x in body["data"]] == [e3["id"], e1["id"], e4["id"]]

        appointment = await book(client, slot, p2, tenant=tenant)
        await client.ok("waitlist.fulfill", {"entryId": e2["id"], "appointmentId": appointment["id"]}, tenant=tenant)
        status, body, _ = await client.get("/waitlist", headers=auth, status="fulfilled")
        assert status == 200 and [(x["id"], x["appointmentId"]) for x in body["data"]] == [
            (e2["id"], appointment["id"])
        ]
        status, body, _ = await client.get("/waitlist", headers=auth, status="cancelled")
        assert status == 200 and body == {"data": [], "nextCursor": None}

        # a patient token sees only its own entries
        own = service.auth(tenant, scope="scheduling:read", patient_id=p1)
        status, body, _ = await client.get("/waitlist", headers=own)
        assert status == 200 and [x["id"] for x in body["data"]] == [e3["id"], e1["id"]]

        status, body, _ = await client.get("/waitlist", headers=service.auth("t2-" + tenant))
        assert status == 200 and body == {"data": [], "nextCursor": None}


# --- PreviewAvailabilityPattern -------------------------------------------------------------------


async def test_preview_expands_a_pattern_across_a_dst_change_and_stores_nothing(service: Any) -> None:
    conn = await asyncpg.connect(service.postgres)
    try:
        # what a stored preview would leave: slots in its range (no other test uses late October 2027)
        counts = "SELECT count(*) FROM slots WHERE start_at >= '2027-10-25' AND start_at < '2027-11-06'"
        before = await conn.fetchval(counts)
        async with Client(service) as client:
            body = {
                "availabilityPattern": {
                    "windows": [{"daysOfWeek": ["mon"], "startTime": "09:00", "endTime": "10:00"}],
                    "slotMinutes": 30,
                    "timezone": "Europe/Berlin",
                },
                # Berlin goes back to winter time on Sunday 2027-10-31
                "range": {"start": "2027-10-25T00:00:00+02:00", "end": "2027-11-06T00:00:00+01:00"},
            }
            status, reply, _ = await client.post("/availability/preview", body)
            assert status == 200 and reply["ok"] is True and reply["count"] == 4
            assert [(ts(p["start"]), ts(p["end"])) for p in reply["data"]] == [
                (ts("2027-10-25T07:00:00Z"), ts("2027-10-25T07:30:00Z")),
                (ts("2027-10-25T07:30:00Z"), ts("2027-10-25T08:00:00Z")),
                (ts("2027-11-01T08:00:00Z"), ts("2027-11-01T08:30:00Z")),
                (ts("2027-11-01T08:30:00Z"), ts("2027-11-01T09:00:00Z")),
            ]
            # a pattern limited by validFrom/validTo, read with a read-only token
            limited = {
                **body,
                "availabilityPattern": {**body["availabilityPattern"], "validFrom": "2027-10-28T00:00:00Z"},
            }
            status, reply, _ = await client.post(
                "/availability/preview", limited, headers=service.auth(scope="scheduling:read")
            )
            assert status == 200 and reply["count"] == 2

            rules = body["availabilityPattern"]
            for bad, field in [
                ({"availabilityPattern": body["availabilityPattern"]}, "range"),
                ({"range": body["range"]}, "availabilityPattern"),
                ({**body, "range": {"start": "2027-11-06T00:00:00Z", "end": "2027-10-25T00:00:00Z"}}, "range"),
                ({**body, "range": {"start": "2027-01-01T00:00:00Z", "end": "2031-01-01T00:00:00Z"}}, "range"),
                ({**body, "availabilityPattern": {**rules, "slotMinutes": 1}}, "slotMinutes"),
                (
                    {**body, "availabilityPattern": {**body["availabilityPattern"], "timezone": "Mars/Olympus"}},
                    "pattern",
                ),
                ([1, 2], "body"),
                # a time of day with an offset next to one without: the domain model cannot compare them
                (
                    {
                        **body,
                        "availabilityPattern": {**rules, "windows": [{**rules["windows"][0], "endTime": "10:00Z"}]},
                    },
                    "windows",
                ),
            ]:
                status, reply, _ = await client.post("/availability/preview", bad)
                error_of(status, reply, "VALIDATION_FAILED", 400)
                assert any(field.lower() in d["field"].lower() for d in reply["error"]["details"]), (bad, reply)
        assert await conn.fetchval(counts) == before == 0
    finally:
        await conn.close()


# --- validation, authentication, permissions -----------------------------------------------------

RANGE = {"from": "2027-03-01T00:00:00Z", "to": "2027-03-02T00:00:00Z"}
BAD_PARAMETERS = [
    ("/slots", {"to": RANGE["to"]}, "from"),
    ("/slots", {**RANGE, "from": "yesterday"}, "from"),
    ("/slots", {**RANGE, "from": "2027-03-01T00:00:00"}, "from"),
    ("/slots", {**RANGE, "to": "2027-13-01T00:00:00Z"}, "to"),
    ("/slots", {**RANGE, "to": RANGE["from"]}, "to"),
    ("/slots", {**RANGE, "to": "2027-02-28T00:00:00Z"}, "to"),
    ("/slots", {**RANGE, "from": "0001-01-01T00:00:00+14:00"}, "from"),
    ("/slots", {**RANGE, "limit": "0"}, "limit"),
    ("/slots", {**RANGE, "limit": "501"}, "limit"),
    ("/slots", {**RANGE, "limit": "ten"}, "limit"),
    ("/slots", {**RANGE, "limit": "-5"}, "limit"),
    ("/slots", {**RANGE, "cursor": "not a cursor!"}, "cursor"),
    ("/slots", {**RANGE, "cursor": cursor_of(["2027-03-01T00:00:00+00:00"])}, "cursor"),
    ("/slots", {**RANGE, "cursor": cursor_of(["2027-03-01T00:00:00+00:00", 5])}, "cursor"),
    ("/slots", {**RANGE, "cursor": cursor_of(["2027-03-01T00:00:00", "sl-x"])}, "cursor"),
    ("/slots", {**RANGE, "providerId": "a\x00b"}, "providerId"),
    ("/calendar", {"from": RANGE["from"]}, "to"),
    ("/calendar", {**RANGE, "to": "2026-01-01T00:00:00Z"}, "to"),
    ("/calendar", {**RANGE, "limit": "1000"}, "limit"),
    ("/calendar", {**RANGE, "cursor": cursor_of({"a": 1})}, "cursor"),
    ("/calendar", {**RANGE, "facilityId": "\x00"}, "facilityId"),
    ("/schedules/sc-000000000000-nothing/slots", {"status": "booked"}, "status"),
    ("/schedules/sc-000000000000-nothing/slots", {"limit": "0"}, "limit"),
    ("/patients/pat-1/appointments", {"status": "free"}, "status"),
    ("/patients/pat-1/appointments", {"cursor": cursor_of([1, 2])}, "cursor"),
    ("/schedules", {"limit": "0"}, "limit"),
    ("/schedules", {"cursor": cursor_of([5])}, "cursor"),
    ("/schedules", {"actorId": "\x00"}, "actorId"),
    ("/waitlist", {"status": "booked"}, "status"),
    ("/waitlist", {"cursor": cursor_of(["x"])}, "cursor"),
    ("/waitlist", {"limit": "x"}, "limit"),
]


@pytest.mark.parametrize(("path", "params", "field"), BAD_PARAMETERS, ids=[f"{p}-{f}" for p, _, f in BAD_PARAMETERS])
async def test_bad_query_parameters_are_validation_failed_naming_the_field(
    service: Any, path: str, params: dict[str, str], field: str
) -> None:
    async with Client(service) as client:
        status, body, _ = await client.get(path, **params)
        error_of(status, body, "VALIDATION_FAILED", 400)
        assert field in [d["field"] for d in body["error"]["details"]], body


async def test_a_limit_of_non_ascii_digits_is_validation_failed(service: Any) -> None:
    async with Client(service) as client:
        status, body, _ = await client.get("/slots", limit="¹", **RANGE)
        error_of(status, body, "VALIDATION_FAILED", 400)


async def test_a_pattern_mixing_naive_and_offset_times_of_day_is_refused(service: Any) -> None:
    body = {
        "actor": {"reference": unique("Practitioner/p"), "type": "Practitioner"},
        "locationId": unique("clinic"),
        "serviceType": SERVICE_TYPE,
        "planningHorizon": HORIZON,
        "availabilityPattern": {
            **pattern(),
            "windows": [{"daysOfWeek": ["mon"], "startTime": "09:00", "endTime": "10:00Z"}],
        },
    }
    async with Client(service) as client:
        msg = await client.nc.request(
            "scheduling.cmd.schedule.create", json.dumps(body).encode(), timeout=3, headers=service.auth()
        )
        reply = json.loads(msg.data)
        assert reply["ok"] is False and reply["error"]["code"] == "VALIDATION_FAILED"


PREVIEW = {
    "availabilityPattern": pattern(),
    "range": {"start": "2027-03-01T00:00:00Z", "end": "2027-03-02T00:00:00Z"},
}
ROUTES = [
    ("GET", "/slots", RANGE),
    ("GET", "/schedules/sc-000000000000-nothing/slots", {}),
    ("GET", "/appointments/ap-000000000000-nothing", {}),
    ("GET", "/patients/pat-1/appointments", {}),
    ("GET", "/calendar", RANGE),
    ("GET", "/schedules/sc-000000000000-nothing", {}),
    ("GET", "/schedules", {}),
    ("GET", "/waitlist", {}),
    ("POST", "/availability/preview", PREVIEW),
]


async def _call(client: Client, method: str, path: str, params: dict[str, Any], headers: dict[str, str]) -> Any:
    if method == "POST":
        return await client.post(path, params, headers=headers)
    return await client.get(path, headers=headers, **params)


@pytest.mark.parametrize(("method", "path", "params"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_queries_need_a_valid_token_and_the_read_scope(
    service: Any, method: str, path: str, params: dict[str, Any]
) -> None:
    async with Client(service) as client:
        status, body, _ = await _call(client, method, path, params, {})
        error_of(status, body, "UNAUTHENTICATED", 401)
        status, body, _ = await _call(client, method, path, params, {"Authorization": "Bearer not-a-jwt"})
        error_of(status, body, "UNAUTHENTICATED", 401)
        status, body, _ = await _call(client, method, path, params, service.auth(scope="scheduling:write"))
        error_of(status, body, "FORBIDDEN", 403)
        for scope in ("scheduling:read", "scheduling:admin"):
            status, body, _ = await _call(client, method, path, params, service.auth(scope=scope))
            assert status in (200, 404), body
