"""Hostile values over NATS and HTTP: each gets its clear error, never INTERNAL/500, and the service goes on.

Every case is followed (in the same test) by a valid command or query that must still be answered.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from conftest import SECRET, unique
from support.client import Client, schedule_body

DAY = ("2027-09-13T00:00:00Z", "2027-09-14T00:00:00Z")  # a Monday
OVERFLOWING = ["0001-01-01T00:00:00+14:00", "9999-12-31T22:00:00-05:00", "1899-12-31T23:59:59Z", "2200-01-01T00:00:00Z"]


async def _schedule_and_slots(client: Client, tenant: str = "t1") -> tuple[dict[str, Any], list[str]]:
    body = schedule_body(unique("Practitioner/hostile"), *DAY, days=("mon",), window=("08:00", "12:00"))
    schedule = await client.ok("schedule.create", body, tenant=tenant)
    status, page, _ = await client.get(f"/schedules/{schedule['id']}/slots", headers=client.service.auth(tenant))
    assert status == 200
    return schedule, [s["id"] for s in page["data"]]


def _fields(reply: dict[str, Any]) -> set[str]:
    assert reply["ok"] is False and reply["error"]["code"] == "VALIDATION_FAILED", reply
    assert reply["error"]["status"] == 400
    return {d["field"] for d in reply["error"]["details"]}


@pytest.mark.parametrize("field", ["patientId", "description", "serviceType"])
@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800", "a\u0007b"])
async def test_forbidden_characters_in_text_fields_are_refused_over_nats(service: Any, field: str, bad: str) -> None:
    async with Client(service) as client:
        _, slots = await _schedule_and_slots(client)
        patient = unique("pat-h")
        body = {"slotId": slots[0], "patientId": patient, field: bad}
        raw = json.dumps(body).encode()  # \ud800 stays an escape: valid JSON, invalid text
        assert _fields(await client.command("appointment.book", raw)) == {field}
        booked = await client.ok("appointment.book", {"slotId": slots[0], "patientId": patient})
        status, shown, _ = await client.get(f"/appointments/{booked['id']}")
        assert status == 200 and shown["data"]["id"] == booked["id"]


async def test_a_patient_self_booking_with_nul_gets_400_and_the_next_booking_201(service: Any) -> None:
    async with Client(service) as client:
        _, slots = await _schedule_and_slots(client)
        patient = service.auth(scope="scheduling:read scheduling:write", patient_id="pat-nul")
        status, body, _ = await client.post(
            "/appointments/self-book", {"slotId": slots[0], "description": "x\u0000"}, headers=patient
        )
        assert status == 400 and _fields(body) == {"description"}
        status, body, _ = await client.post("/appointments", {"slotId": slots[0], "patientId": "p"})
        assert status == 201, body


@pytest.mark.parametrize("when", OVERFLOWING)
async def test_times_outside_the_supported_range_are_refused(service: Any, when: str) -> None:
    async with Client(service) as client:
        schedule, _ = await _schedule_and_slots(client)
        nats_body = {"scheduleId": schedule["id"], "start": when, "end": "2027-09-13T09:00:00Z"}
        assert "start" in _fields(await client.command("slot.create", nats_body))
        exception = {"start": "2027-09-13T08:00:00Z", "end": when}
        status, body, _ = await client.post(f"/schedules/{schedule['id']}/exceptions", exception)
        assert status == 400 and "end" in _fields(body)
        status, body, _ = await client.get("/slots", **{"from": when, "to": "2027-09-14T00:00:00Z"})
        assert status == 400 and _fields(body) == {"from"}


async def test_deep_huge_and_non_finite_bodies_are_refused_over_nats_and_http(service: Any) -> None:
    async with Client(service) as client:
        _, slots = await _schedule_and_slots(client)
        deep = b'{"slotId": ' + b"[" * 1000 + b"]" * 1000 + b"}"
        huge = json.dumps({"slotId": slots[0], "patientId": "p", "description": "x" * 300_000}).encode()
        for raw in (deep, huge, b'{"slotId": NaN}', b'{"slotId": 1e999}', b'{"priority": 99999999999999999999999}'):
            reply = await client.command("appointment.book", raw)
            assert reply["error"]["code"] == "VALIDATION_FAILED", reply
        assert client.http is not None
        for raw, expected in ((deep, 400), (huge, 413), (b'{"slotId": NaN}', 400)):
            headers = {**service.auth(), "Content-Type": "application/json"}
            async with client.http.post("/appointments", data=raw, headers=headers) as response:
                assert response.status == expected, await response.text()
                assert (await response.json())["error"]["code"] == "VALIDATION_FAILED"
        await client.ok("appointment.book", {"slotId": slots[0], "patientId": unique("p")})


@pytest.mark.parametrize(
    "claims",
    [{"sub": "no-tenant"}, {"tenant": "t\u0000"}, {"tenant": {"id": 1}}, {"tenant": "t1", "sub": 42},
     {"tenant": "t1", "patient_id": ["p"]}, {"tenant": "t1", "scope": ["scheduling:write"]}],
)  # fmt: skip
async def test_tokens_with_missing_or_hostile_claims_are_unauthenticated(service: Any, claims: dict[str, Any]) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    headers = {"Authorization": f"Bearer {token}"}
    async with Client(service) as client:
        msg = await client.nc.request("scheduling.cmd.appointment.book", b"{}", timeout=10, headers=headers)
        assert json.loads(msg.data)["error"]["code"] == "UNAUTHENTICATED"
        status, body, _ = await client.get("/schedules", headers=headers)
        assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"
        forged = {"Authorization": "Bearer " + jwt.encode({"tenant": "t1"}, "not-the-secret-" * 4, algorithm="HS256")}
        status, body, _ = await client.get("/schedules", headers=forged)
        assert status == 401


async def test_an_idempotency_key_with_control_characters_is_refused(service: Any) -> None:
    async with Client(service) as client:
        _, slots = await _schedule_and_slots(client)
        reply = await client.command("appointment.book", {"slotId": slots[0], "patientId": "p"},
                                     headers={"Nats-Msg-Id": "key\u0001"})  # fmt: skip
        assert _fields(reply) == {"Nats-Msg-Id"}


async def test_ids_of_another_tenant_do_not_exist_for_every_command_that_takes_one(service: Any) -> None:
    async with Client(service) as client:
        schedule, slots = await _schedule_and_slots(client, "t1")
        booked = await client.ok("appointment.book", {"slotId": slots[0], "patientId": "pat-a"}, tenant="t1")
        entry = await client.ok(
            "waitlist.add",
            {"patientId": "pat-a", "serviceType": "gp", "requestedPeriod": {"start": DAY[0], "end": DAY[1]}},
            tenant="t1",
        )
        aid, sid = booked["id"], schedule["id"]
        cases = [
            ("appointment.book", {"slotId": slots[1], "patientId": "pat-b"}, "SLOT_NOT_FOUND"),
            ("appointment.reschedule", {"appointmentId": aid, "newSlotId": slots[1]}, "APPOINTMENT_NOT_FOUND"),
            ("appointment.status", {"appointmentId": aid, "status": "arrived"}, "APPOINTMENT_NOT_FOUND"),
            ("appointment.cancel", {"appointmentId": aid}, "APPOINTMENT_NOT_FOUND"),
            ("appointment.check-in", {"appointmentId": aid}, "APPOINTMENT_NOT_FOUND"),
            ("schedule.add-exception", {"scheduleId": sid, "start": DAY[0], "end": DAY[1]}, "SCHEDULE_NOT_FOUND"),
            ("slot.create", {"scheduleId": sid, "start": "2027-09-13T20:00:00Z", "end": "2027-09-13T20:15:00Z"},
             "SCHEDULE_NOT_FOUND"),
            ("waitlist.fulfill", {"entryId": entry["id"], "appointmentId": aid}, "WAITLIST_ENTRY_NOT_FOUND"),
        ]  # fmt: skip
        for name, body, code in cases:
            reply = await client.command(name, body, tenant="t2")
            assert reply["ok"] is False and reply["error"]["code"] == code, (name, reply)
        status, shown, _ = await client.get(f"/appointments/{aid}")
        assert status == 200 and shown["data"]["status"] == "booked" and shown["data"]["version"] == 1


@pytest.mark.parametrize("case", ["another tenant", "another patient", "nonexistent", "own"])
async def test_waitlist_fulfilment_checks_the_appointment_on_its_own_partition(service: Any, case: str) -> None:
    """The entry (no provider) lives on the tenant-wide partition; the appointment on its resource's."""
    async with Client(service) as client:
        _, slots = await _schedule_and_slots(client, "t1")
        owner_id = unique("pat-w")
        owner = await client.ok("appointment.book", {"slotId": slots[0], "patientId": owner_id}, tenant="t1")
        tenant = "t2" if case == "another tenant" else "t1"
        patient = unique("pat-other") if case == "another patient" else owner_id
        period = {"start": DAY[0], "end": DAY[1]}
        entry = await client.ok("waitlist.add", {"patientId": patient, "serviceType": "gp", "requestedPeriod": period},
                                tenant=tenant)  # fmt: skip
        target = owner["id"] if case != "nonexistent" else owner["id"][:-4] + "0000"
        reply = await client.command("waitlist.fulfill", {"entryId": entry["id"], "appointmentId": target},
                                     tenant=tenant)  # fmt: skip
        expected = {"another tenant": "APPOINTMENT_NOT_FOUND", "another patient": "VALIDATION_FAILED",
                    "nonexistent": "APPOINTMENT_NOT_FOUND", "own": None}[case]  # fmt: skip
        status, page, _ = await client.get("/waitlist", headers=service.auth(tenant, patient_id=patient))
        (shown,) = [e for e in page["data"] if e["id"] == entry["id"]]
        if expected is None:
            assert reply["ok"] and reply["data"]["status"] == "fulfilled" and reply["data"]["appointmentId"] == target
            assert shown["status"] == "fulfilled"
        else:
            assert reply["ok"] is False and reply["error"]["code"] == expected, reply
            assert shown["status"] == "waiting"
