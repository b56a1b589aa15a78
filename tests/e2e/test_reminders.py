"""DispatchReminder and the patient cache, over the contract: HTTP dispatch (admin), JetStream out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from conftest import unique
from support.client import Client, eventually

ADMIN = "scheduling:read scheduling:write scheduling:admin"


async def _booked_soon(client: Client, patient: str) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    schedule = await client.ok(
        "schedule.create",
        {
            "actor": {"reference": unique("Practitioner/r"), "type": "Practitioner"},
            "locationId": "loc",
            "serviceType": "gp",
            "planningHorizon": {"start": now.isoformat(), "end": (now + timedelta(days=3)).isoformat()},
        },
    )
    start = now + timedelta(minutes=90)
    slot = await client.ok(
        "slot.create",
        {"scheduleId": schedule["id"], "start": start.isoformat(), "end": (start + timedelta(minutes=15)).isoformat()},
    )
    return await client.ok("appointment.book", {"slotId": slot["id"], "patientId": patient})


async def _dispatched(service: Any, command_id: str) -> bool:
    """Every partition's actor has decided this dispatch (its records are audited)."""
    conn = await asyncpg.connect(service.postgres)
    try:
        rows = await conn.fetch("SELECT command_id FROM audit_log WHERE command_id LIKE $1", f"{command_id}:%")
        return len(rows) == 4
    finally:
        await conn.close()


async def test_a_due_reminder_is_handed_off_once_with_the_patient_from_the_cache(service: Any) -> None:
    async with Client(service) as client:
        patient = unique("pat")
        registration = {"patientId": patient, "name": "Ada Lovelace", "birthDate": "1815-12-10", "telecom": []}
        await client.nc.publish(
            "registration.patient.registered", json.dumps(registration).encode(), headers=service.auth()
        )
        appointment = await _booked_soon(client, patient)

        async def enriched() -> bool:
            status, body, _ = await client.get(f"/appointments/{appointment['id']}")
            return status == 200 and body["data"].get("patient", {}).get("name") == "Ada Lovelace"

        await eventually(enriched)

        admin = service.auth(scope=ADMIN)
        first = unique("dispatch")
        status, body, _ = await client.post("/reminders/dispatch", {}, headers={**admin, "Idempotency-Key": first})
        assert status == 200 and body["ok"], body
        subject = f"appointments/{appointment['id']}"
        seen = await client.events(
            "scheduling.events.appointment.reminder.sent", lambda es: any(e["subject"] == subject for e in es)
        )
        event = next(e for e, _ in seen if e["subject"] == subject)
        assert event["data"]["leadMinutes"] == 120 and event["data"]["remindersSent"] == [120]
        handed = await client.events(
            "notifications.reminder.requested",
            lambda es: any(e["appointmentId"] == appointment["id"] for e in es),
            stream="NOTIFICATIONS",
        )
        notice = next(e for e, _ in handed if e["appointmentId"] == appointment["id"])
        assert notice["patient"]["name"] == "Ada Lovelace" and notice["leadMinutes"] == 120

        second = unique("dispatch")
        status, _, _ = await client.post("/reminders/dispatch", {}, headers={**admin, "Idempotency-Key": second})
        assert status == 200
        await eventually(lambda: _dispatched(service, second))
        stored = await client.stored("scheduling.events.appointment.reminder.sent")
        assert [e["subject"] for e in stored].count(subject) == 1


async def test_dispatch_needs_the_admin_scope(service: Any) -> None:
    async with Client(service) as client:
        status, body, _ = await client.post("/reminders/dispatch", {})
        assert status == 403 and body["error"]["code"] == "FORBIDDEN"
