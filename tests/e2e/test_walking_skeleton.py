"""One booking end to end over the contract: NATS request in, CloudEvent on JetStream out, HTTP query sees it."""

from __future__ import annotations

from typing import Any

from conftest import unique
from support.client import Client

HORIZON = {"start": "2027-01-04T00:00:00Z", "end": "2027-01-09T00:00:00Z"}


async def _schedule(client: Client, actor: str | None = None, tenant: str = "t1") -> dict[str, Any]:
    return await client.ok(
        "schedule.create",
        {
            "actor": {"reference": actor or unique("Practitioner/p"), "type": "Practitioner"},
            "locationId": "clinic-north",
            "serviceType": "general-practice",
            "planningHorizon": HORIZON,
        },
        tenant=tenant,
    )


async def _slot(
    client: Client,
    schedule_id: str,
    start: str = "2027-01-05T09:00:00Z",
    end: str = "2027-01-05T09:15:00Z",
    tenant: str = "t1",
) -> dict[str, Any]:
    return await client.ok("slot.create", {"scheduleId": schedule_id, "start": start, "end": end}, tenant=tenant)


async def test_booking_travels_the_whole_path(service: Any) -> None:
    async with Client(service) as client:
        schedule = await _schedule(client)
        slot = await _slot(client, schedule["id"])
        key = unique("book")
        first = await client.command(
            "appointment.book", {"slotId": slot["id"], "patientId": unique("pat")}, headers={"Nats-Msg-Id": key}
        )
        assert first["ok"], first
        appointment = first["data"]
        assert appointment["status"] == "booked" and appointment["version"] == 1
        assert appointment["slotId"] == slot["id"] and appointment["start"] == slot["start"]

        # the CloudEvent on JetStream
        subject = f"appointments/{appointment['id']}"
        seen = await client.events(
            "scheduling.events.appointment.created", lambda es: any(e["subject"] == subject for e in es)
        )
        event, headers = next((e, h) for e, h in seen if e["subject"] == subject)
        assert event["specversion"] == "1.0" and event["source"] == "/scheduling"
        assert event["type"] == "appointment.created" and event["datacontenttype"] == "application/json"
        assert event["tenantid"] == "t1" and event["causationid"] == key
        assert headers["Nats-Msg-Id"] == event["id"]
        assert event["data"]["id"] == appointment["id"] and event["data"]["version"] == 1

        # the query side sees it as soon as the reply came back (read-your-writes)
        status, body, response_headers = await client.get(f"/appointments/{appointment['id']}")
        assert status == 200 and body["data"]["status"] == "booked"
        assert response_headers["ETag"] == '"1"'
        status, body, _ = await client.get(f"/schedules/{schedule['id']}/slots")
        assert status == 200
        assert [(s["id"], s["status"]) for s in body["data"]] == [(slot["id"], "busy")]


async def test_second_booking_of_a_slot_is_refused(service: Any) -> None:
    async with Client(service) as client:
        schedule = await _schedule(client)
        slot = await _slot(client, schedule["id"])
        await client.ok("appointment.book", {"slotId": slot["id"], "patientId": unique("pat")})
        second = await client.command("appointment.book", {"slotId": slot["id"], "patientId": unique("pat")})
        assert second == {
            "ok": False,
            "error": {"code": "SLOT_NOT_AVAILABLE", "status": 409, "message": f"slot {slot['id']} is busy"},
        }


async def test_repeat_with_same_idempotency_key_returns_first_reply_and_emits_nothing_more(service: Any) -> None:
    async with Client(service) as client:
        schedule = await _schedule(client)
        slot = await _slot(client, schedule["id"])
        later = await _slot(client, schedule["id"], "2027-01-05T10:00:00Z", "2027-01-05T10:15:00Z")
        key = unique("idem")
        body = {"slotId": slot["id"], "patientId": unique("pat")}
        first = await client.command("appointment.book", body, headers={"Nats-Msg-Id": key})
        repeat = await client.command("appointment.book", body, headers={"Nats-Msg-Id": key})
        by_field = await client.command("appointment.book", {**body, "commandId": key})
        assert first["ok"] and repeat == first and by_field == first
        # a later booking on the same resource (same partition, so its event comes after any duplicate)
        marker = await client.ok("appointment.book", {"slotId": later["id"], "patientId": unique("pat")})
        marker_subject = f"appointments/{marker['id']}"
        seen = await client.events(
            "scheduling.events.appointment.created", lambda es: any(e["subject"] == marker_subject for e in es)
        )
        mine = [e for e, _ in seen if e["subject"] == f"appointments/{first['data']['id']}"]
        assert len(mine) == 1


async def test_commands_need_a_valid_token(service: Any) -> None:
    async with Client(service) as client:
        reply = await client.command("slot.create", {}, headers={"Authorization": "Bearer not-a-jwt"})
        assert reply["ok"] is False and reply["error"]["code"] == "UNAUTHENTICATED" and reply["error"]["status"] == 401
        msg = await client.nc.request("scheduling.cmd.slot.create", b"{}", timeout=10)
        assert msg.data and b"UNAUTHENTICATED" in msg.data
        status, body, _ = await client.get("/schedules", headers={})
        assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"


async def test_malformed_commands_get_validation_failed_and_the_worker_goes_on(service: Any) -> None:
    async with Client(service) as client:
        not_json = await client.command("appointment.book", b"{nope")
        assert not_json["error"]["code"] == "VALIDATION_FAILED"
        wrong_types = await client.command("appointment.book", {"slotId": 5})
        assert wrong_types["error"]["code"] == "VALIDATION_FAILED"
        assert {d["field"] for d in wrong_types["error"]["details"]} >= {"slotId", "patientId"}
        unknown = await client.command("appointment.teleport", {})
        assert unknown["error"]["code"] == "VALIDATION_FAILED"
        missing = await client.command("appointment.book", {"slotId": "sl-000000000000-nothing", "patientId": "p"})
        assert missing["error"]["code"] == "SLOT_NOT_FOUND" and missing["error"]["status"] == 404
        # and the actor still decides the next command
        schedule = await _schedule(client)
        assert schedule["version"] == 1


async def test_another_tenant_sees_nothing(service: Any) -> None:
    async with Client(service) as client:
        schedule = await _schedule(client, tenant="t1")
        slot = await _slot(client, schedule["id"], tenant="t1")
        appointment = await client.ok("appointment.book", {"slotId": slot["id"], "patientId": unique("pat")})
        other = await client.command("appointment.book", {"slotId": slot["id"], "patientId": "x"}, tenant="t2")
        assert other["error"]["code"] == "SLOT_NOT_FOUND"
        cancel = await client.command("appointment.cancel", {"appointmentId": appointment["id"]}, tenant="t2")
        assert cancel["error"]["code"] == "APPOINTMENT_NOT_FOUND"
        status, body, _ = await client.get(f"/appointments/{appointment['id']}", headers=service.auth("t2"))
        assert status == 404 and body["error"]["code"] == "APPOINTMENT_NOT_FOUND"
        status, body, _ = await client.get(f"/schedules/{schedule['id']}/slots", headers=service.auth("t2"))
        assert status == 404 and body["error"]["code"] == "SCHEDULE_NOT_FOUND"
