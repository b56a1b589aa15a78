"""A schedule a clinic runs for months (issue 12, CONTRACT section 9), end to end over NATS and HTTP:
extended, given a holiday that is then removed, a Saturday clinic, a voided slot, deactivated and reactivated;
each with its events and what the queries show."""

from __future__ import annotations

from typing import Any

from conftest import unique
from support.client import Client, eventually

START = "2027-05-03T00:00:00Z"  # a Monday
PATTERN = {"windows": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri"], "startTime": "09:00", "endTime": "11:00"}],
           "slotMinutes": 60, "timezone": "UTC"}  # fmt: skip


async def slots(client: Client, schedule_id: str, status: str | None = None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    params = {"limit": "500", **({"status": status} if status else {})}
    while True:
        code, body, _ = await client.get(f"/schedules/{schedule_id}/slots", **params)
        assert code == 200, body
        found |= {s["id"]: s for s in body["data"]}
        if not body.get("nextCursor"):
            return found
        params["cursor"] = body["nextCursor"]


async def request(client: Client, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    assert client.http is not None
    async with client.http.request(method, path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def test_a_clinic_runs_its_schedule_for_months(service: Any) -> None:
    async with Client(service) as client:
        auth = service.auth()
        body = {"actor": {"reference": unique("Practitioner/months"), "type": "Practitioner"}, "locationId": "loc",
                "serviceType": "gp", "availabilityPattern": PATTERN,
                "planningHorizon": {"start": START, "end": "2027-06-02T00:00:00Z"}}  # 30 days  # fmt: skip
        schedule = await client.ok("schedule.create", body)
        sid = schedule["id"]
        assert len(await slots(client, sid)) == 22 * 2

        # extended to 60 days over HTTP: the pattern's new slots open
        status, reply = await request(
            client,
            "PATCH",
            f"/schedules/{sid}",
            {"planningHorizon": {"start": START, "end": "2027-07-02T00:00:00Z"}},
            auth,
        )
        assert status == 200 and reply["data"]["conflicts"] == [] and reply["data"]["version"] == 2, reply
        assert len(await slots(client, sid)) == 44 * 2
        await client.events(
            "scheduling.events.schedule.updated",
            lambda es: any(e["data"]["id"] == sid and e["data"]["version"] == 2 for e in es),
        )

        # a holiday (Monday 31 May) with one booking in it, then removed
        booked_slot = next(s for s in (await slots(client, sid)).values() if s["start"].startswith("2027-05-31T09"))
        booked = await client.ok("appointment.book", {"slotId": booked_slot["id"], "patientId": unique("pat")})
        holiday = await client.ok(
            "schedule.add-exception",
            {"scheduleId": sid, "start": "2027-05-31T00:00:00Z", "end": "2027-06-01T00:00:00Z", "reason": "holiday"},
        )
        assert [c["id"] for c in holiday["conflicts"]] == [booked["id"]] and holiday["exceptionId"]
        day = {k: v for k, v in (await slots(client, sid)).items() if v["start"].startswith("2027-05-31")}
        assert sorted(s["status"] for s in day.values()) == ["busy", "busy-unavailable"]
        status, reply = await request(client, "DELETE", f"/schedules/{sid}/exceptions/{holiday['exceptionId']}",
                                      None, auth)  # fmt: skip
        assert status == 200 and reply["data"]["exceptions"] == [], reply
        day = {k: v for k, v in (await slots(client, sid)).items() if v["start"].startswith("2027-05-31")}
        assert sorted(s["status"] for s in day.values()) == ["busy", "free"]
        reopened = next(k for k, v in day.items() if v["status"] == "free")
        await client.events(
            "scheduling.events.slot.updated", lambda es: sum(e["data"]["id"] == reopened for e in es) >= 2
        )  # closed, then reopened

        # a Saturday clinic: an `available` exception opens slots
        saturday = await client.ok("schedule.add-exception", {"scheduleId": sid, "kind": "available",
                                                              "start": "2027-06-05T09:00:00Z",
                                                              "end": "2027-06-05T12:00:00Z"})  # fmt: skip
        assert saturday["exception"]["kind"] == "available"
        opened = [s for s in (await slots(client, sid, "free")).values() if s["start"].startswith("2027-06-05")]
        assert len(opened) == 3

        # one slot voided over HTTP; a held one cannot be
        status, reply = await request(client, "POST", f"/slots/{opened[0]['id']}/void", {"reason": "mistake"}, auth)
        assert status == 200 and reply["data"]["status"] == "entered-in-error", reply
        voided = opened[0]["id"]
        await client.events("scheduling.events.slot.updated",
                            lambda es: any(e["data"]["id"] == voided and e["data"]["status"] == "entered-in-error"
                                           for e in es))  # fmt: skip
        status, reply = await request(client, "POST", f"/slots/{booked_slot['id']}/void", {}, auth)
        assert status == 409 and reply["error"]["details"]["appointmentIds"] == [booked["id"]], reply

        # deactivated over NATS: nothing can be booked, the held appointment stays
        deactivated = await client.ok("schedule.deactivate", {"scheduleId": sid})
        assert deactivated["active"] is False and [c["id"] for c in deactivated["conflicts"]] == [booked["id"]]
        assert {s["status"] for s in (await slots(client, sid)).values()} == {"busy", "busy-unavailable",
                                                                                "entered-in-error"}  # fmt: skip
        refused = await client.command("appointment.book", {"slotId": opened[1]["id"], "patientId": unique("pat")})
        assert refused["error"]["code"] == "SLOT_NOT_AVAILABLE", refused
        code, view, _ = await client.get(f"/schedules/{sid}")
        assert code == 200 and view["data"]["active"] is False
        closed = await client.events(
            "scheduling.events.schedule.updated",
            lambda es: any(e["data"]["id"] == sid and not e["data"]["active"] for e in es),
        )
        assert closed
        code, appointment, _ = await client.get(f"/appointments/{booked['id']}")
        assert appointment["data"]["status"] == "booked"

        # reactivated: the free slots come back
        await client.ok("schedule.update", {"scheduleId": sid, "active": True})

        async def reopened_all() -> bool:
            return len(await slots(client, sid, "free")) == 44 * 2 - 1 + 2  # less the booked one, plus Saturday's two

        await eventually(reopened_all)


async def test_a_patient_token_cannot_change_a_schedule(service: Any) -> None:
    async with Client(service) as client:
        reply = await client.command("schedule.update", {"scheduleId": "sc-x", "active": False}, patient_id="p")
        assert reply["error"]["code"] == "FORBIDDEN"
        status, body = await request(client, "PATCH", "/schedules/sc-x", {"active": False},
                                     service.auth(patient_id="p"))  # fmt: skip
        assert status == 403 and body["error"]["code"] == "FORBIDDEN"


async def test_a_group_session_a_buffer_and_a_daily_limit(service: Any) -> None:
    async with Client(service) as client:
        body = {"actor": {"reference": unique("Practitioner/group"), "type": "Practitioner"}, "locationId": "loc",
                "serviceType": "vaccination", "planningHorizon": {"start": START, "end": "2027-05-10T00:00:00Z"},
                "bookingPolicy": {"bufferAfterMinutes": 15, "maxPerDay": 7}}  # fmt: skip
        sid = (await client.ok("schedule.create", body))["id"]
        session = await client.ok("slot.create", {"scheduleId": sid, "start": "2027-05-03T09:00:00Z",
                                                  "end": "2027-05-03T10:00:00Z", "capacity": 5})  # fmt: skip
        replies = [await client.command("appointment.book", {"slotId": session["id"], "patientId": unique("pat")})
                   for _ in range(6)]  # fmt: skip
        assert [r["ok"] for r in replies] == [True] * 5 + [False]
        assert replies[5]["error"]["code"] == "SLOT_NOT_AVAILABLE"
        full = (await slots(client, sid))[session["id"]]
        assert (full["status"], full["booked"], full["capacity"]) == ("busy", 5, 5)

        # 10:00 lies inside the session's 15-minute buffer; 10:30 does not
        inside = await client.ok("slot.create", {"scheduleId": sid, "start": "2027-05-03T10:00:00Z",
                                                 "end": "2027-05-03T10:30:00Z"})  # fmt: skip
        reply = await client.command("appointment.book", {"slotId": inside["id"], "patientId": unique("pat")})
        assert reply["error"]["code"] == "DOUBLE_BOOKING_DETECTED" and reply["error"]["details"]["rule"] == "buffer"
        later = []
        for hour in (10, 12, 14):
            times = {"start": f"2027-05-03T{hour}:30:00Z", "end": f"2027-05-03T{hour + 1}:00:00Z"}
            later.append(await client.ok("slot.create", {"scheduleId": sid, **times}))
        # the slot search leaves out what a booking would refuse: the full session and the slot in its buffer
        window = {
            "from": "2027-05-03T00:00:00Z",
            "to": "2027-05-04T00:00:00Z",
            "providerId": body["actor"]["reference"],
        }
        code, found, _ = await client.get("/slots", limit="50", **window)
        assert code == 200 and [s["id"] for s in found["data"]] == [s["id"] for s in later], found
        await client.ok("appointment.book", {"slotId": later[0]["id"], "patientId": unique("pat")})
        await client.ok("appointment.book", {"slotId": later[1]["id"], "patientId": unique("pat")})  # 7 that day
        limit = await client.command("appointment.book", {"slotId": later[2]["id"], "patientId": unique("pat")})
        assert limit["error"]["code"] == "BOOKING_LIMIT_REACHED" and limit["error"]["status"] == 409, limit
