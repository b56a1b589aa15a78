"""Booking rules end to end (issue 11, CONTRACT section 9): over NATS and HTTP, on the real clock.

Each test opens its own practitioner's schedule around the present, so that the time rules (decided
with the worker's clock) see slots that have started, start soon, or lie ahead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import unique
from support.client import Client, eventually

from domain.policy import PATIENT_COMMANDS
from scheduling.core.catalog import CATALOG

ADMIN = "scheduling:read scheduling:write scheduling:admin"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def next_day() -> dict[str, str]:
    return {"start": now().isoformat(), "end": (now() + timedelta(days=1)).isoformat()}


class Practice:
    """A practitioner's schedule from yesterday to a week ahead, with slots made on demand."""

    def __init__(self, client: Client, schedule: dict[str, Any]) -> None:
        self.client, self.schedule = client, schedule

    @classmethod
    async def open(cls, client: Client, policy: dict[str, Any] | None = None) -> Practice:
        today = now()
        body = {
            "actor": {"reference": unique("Practitioner/rules"), "type": "Practitioner"},
            "locationId": "loc", "serviceType": "gp",
            "planningHorizon": {"start": (today - timedelta(days=1)).isoformat(),
                                "end": (today + timedelta(days=7)).isoformat()},
            **({"bookingPolicy": policy} if policy is not None else {}),
        }  # fmt: skip
        return cls(client, await client.ok("schedule.create", body))

    async def slot(self, starts_in: timedelta, minutes: int = 15) -> dict[str, Any]:
        start = now() + starts_in
        body = {"scheduleId": self.schedule["id"], "start": start.isoformat(),
                "end": (start + timedelta(minutes=minutes)).isoformat()}  # fmt: skip
        return await self.client.ok("slot.create", body)


def refused(reply: dict[str, Any], code: str, status: int) -> dict[str, Any]:
    assert reply["ok"] is False and reply["error"]["code"] == code and reply["error"]["status"] == status, reply
    error: dict[str, Any] = reply["error"]
    return error


STAFF_ONLY = [entry for entry in CATALOG if entry.name not in PATIENT_COMMANDS]


@pytest.mark.parametrize("entry", STAFF_ONLY, ids=[entry.name for entry in STAFF_ONLY])
async def test_a_patient_token_is_refused_every_staff_command(service: Any, entry: Any) -> None:
    patient = {"scope": ADMIN, "patient_id": "pat-self"}  # whatever its scopes
    body = {"scheduleId": "sc-x", "appointmentId": "ap-x", "entryId": "wl-x", "status": "fulfilled"}
    async with Client(service) as client:
        refused(await client.command(entry.name, body, **patient), "FORBIDDEN", 403)
        assert client.http is not None
        path = entry.path.replace("{id}", "x-1").replace("{exceptionId}", "ex-1")
        async with client.http.request(entry.method, path, json=body, headers=service.auth(**patient)) as response:
            reply = await response.json()
            assert response.status == 403 and reply["error"]["code"] == "FORBIDDEN", reply


async def test_a_slot_that_has_started_cannot_be_booked(service: Any) -> None:
    async with Client(service) as client:
        practice = await Practice.open(client)
        started = await practice.slot(-timedelta(minutes=5))
        body = {"slotId": started["id"], "patientId": unique("pat")}
        error = refused(await client.command("appointment.book", body), "OUTSIDE_BOOKING_WINDOW", 409)
        assert error["details"]["rule"] == "started"
        status, reply, _ = await client.post("/appointments", body)
        assert status == 409 and reply["error"]["details"]["rule"] == "started"


async def test_a_patient_books_only_inside_the_window_and_staff_may_book_at_short_notice(service: Any) -> None:
    async with Client(service) as client:
        practice = await Practice.open(client)
        soon = await practice.slot(timedelta(minutes=20))
        patient = unique("pat")
        body = {"slotId": soon["id"], "patientId": patient}
        reply = await client.command("appointment.book", body, patient_id=patient)
        assert refused(reply, "OUTSIDE_BOOKING_WINDOW", 409)["details"]["rule"] == "min-notice"
        assert (await client.ok("appointment.book", body))["status"] == "booked"


async def test_check_in_is_refused_early_and_accepted_inside_the_window(service: Any) -> None:
    async with Client(service) as client:
        practice = await Practice.open(client)
        later, soon = await practice.slot(timedelta(hours=3)), await practice.slot(timedelta(minutes=30))
        early = await client.ok("appointment.book", {"slotId": later["id"], "patientId": unique("pat")})
        patient = unique("pat")
        inside = await client.ok("appointment.book", {"slotId": soon["id"], "patientId": patient})
        error = refused(await client.command("appointment.check-in", {"appointmentId": early["id"]}),
                        "OUTSIDE_CHECK_IN_WINDOW", 409)  # fmt: skip
        assert {"opensAt", "closesAt"} <= set(error["details"])
        status, reply, _ = await client.post(f"/appointments/{inside['id']}/check-in", {},
                                             headers=service.auth(patient_id=patient))  # fmt: skip
        assert status == 200 and reply["data"]["status"] == "checked-in", reply


async def test_noshow_is_refused_before_the_start_and_accepted_after_it(service: Any) -> None:
    async with Client(service) as client:
        practice = await Practice.open(client)
        slot = await practice.slot(timedelta(seconds=3), minutes=5)
        booked = await client.ok("appointment.book", {"slotId": slot["id"], "patientId": unique("pat")})
        body = {"appointmentId": booked["id"], "status": "noshow"}
        error = refused(await client.command("appointment.status", body), "INVALID_STATUS_TRANSITION", 409)
        assert error["details"]["reason"] == "not-started"

        async def recorded() -> bool:  # the clock passes the start: the same command is then accepted
            reply = await client.command("appointment.status", body)
            return bool(reply["ok"]) or reply["error"]["details"].get("reason") != "not-started"

        await eventually(recorded, within=15, interval=0.5)
        status, view, _ = await client.get(f"/appointments/{booked['id']}")
        assert status == 200 and view["data"]["status"] == "noshow"


async def test_a_patient_cannot_cancel_inside_the_cutoff_and_staff_can(service: Any) -> None:
    async with Client(service) as client:
        practice = await Practice.open(client, {"cancellationCutoffMinutes": 240, "minNoticeMinutes": 0})
        slot = await practice.slot(timedelta(hours=2))
        patient = unique("pat")
        booked = await client.ok("appointment.book", {"slotId": slot["id"], "patientId": patient}, patient_id=patient)
        status, reply, _ = await client.post(f"/appointments/{booked['id']}/cancel", {},
                                             headers=service.auth(patient_id=patient))  # fmt: skip
        assert status == 409 and reply["error"]["code"] == "CANCELLATION_CUTOFF", reply
        assert (await client.ok("appointment.cancel", {"appointmentId": booked["id"]}))["status"] == "cancelled"


async def _as_of(client: Client, service: Any, path: str, at: datetime) -> None:
    """Partition-wide work (reminders, offer expiry) run by an administrator for the time `at`."""
    status, body, _ = await client.post(path, {"now": at.isoformat()}, headers=service.auth(scope=ADMIN))
    assert status == 200 and body["ok"], body


async def test_a_rescheduled_appointment_gets_the_reminder_of_its_new_time(service: Any) -> None:
    async with Client(service) as client:
        practice = await Practice.open(client, {"reminderLeadMinutes": [60]})
        first, moved_to = await practice.slot(timedelta(minutes=50)), await practice.slot(timedelta(hours=5))
        booked = await client.ok("appointment.book", {"slotId": first["id"], "patientId": unique("pat")})
        subject = f"appointments/{booked['id']}"

        def sent(count: int) -> Any:
            return lambda es: sum(e["subject"] == subject for e in es) >= count

        await _as_of(client, service, "/reminders/dispatch", now())
        await client.events("scheduling.events.appointment.reminder.sent", sent(1))
        moved = await client.ok("appointment.reschedule", {"appointmentId": booked["id"], "newSlotId": moved_to["id"]})
        assert moved.get("remindersSent", []) == []
        await _as_of(
            client, service, "/reminders/dispatch", datetime.fromisoformat(moved_to["start"]) - timedelta(minutes=30)
        )
        seen = await client.events("scheduling.events.appointment.reminder.sent", sent(2))
        second = [e for e, _ in seen if e["subject"] == subject][-1]
        assert second["data"]["leadMinutes"] == 60 and second["data"]["slotId"] == moved_to["id"]


async def test_an_expired_offer_moves_to_the_next_waiting_entry(service: Any) -> None:
    async with Client(service) as client:
        practice = await Practice.open(client, {"waitlistOfferMinutes": 5})
        slot = await practice.slot(timedelta(hours=4))
        provider = practice.schedule["actor"]["reference"]
        wanted = {"providerId": provider, "serviceType": "gp", "requestedPeriod": next_day()}
        first = await client.ok("waitlist.add", {**wanted, "patientId": unique("pat"), "priority": 9})
        second = await client.ok("waitlist.add", {**wanted, "patientId": unique("pat")})
        booked = await client.ok("appointment.book", {"slotId": slot["id"], "patientId": unique("pat")})
        await client.ok("appointment.cancel", {"appointmentId": booked["id"]})

        def offered_to(entry: dict[str, Any]) -> Any:
            return lambda es: any(e["data"]["id"] == entry["id"] for e in es)

        seen = await client.events("scheduling.events.waitlist.slot-available", offered_to(first))
        offer = next(e for e, _ in seen if e["data"]["id"] == first["id"])
        assert offer["data"]["offerExpiresAt"] and offer["data"]["slot"]["id"] == slot["id"]

        await _as_of(client, service, "/waitlist/expire-offers", now() + timedelta(minutes=6))
        await client.events("scheduling.events.waitlist.slot-available", offered_to(second))

        async def entries() -> dict[str, str]:
            status, body, _ = await client.get("/waitlist", limit="500")
            assert status == 200, body
            return {e["id"]: e["status"] for e in body["data"] if e["id"] in (first["id"], second["id"])}

        await eventually(lambda: _statuses_are(entries, {first["id"]: "waiting", second["id"]: "offered"}))


async def _statuses_are(read: Any, expected: dict[str, str]) -> bool:
    return bool(await read() == expected)


async def test_decline_and_cancel_over_http(service: Any) -> None:
    async with Client(service) as client:
        practice = await Practice.open(client)
        slot = await practice.slot(timedelta(hours=6))
        provider = practice.schedule["actor"]["reference"]
        patient = unique("pat")
        wanted = {"providerId": provider, "serviceType": "gp", "patientId": patient, "requestedPeriod": next_day()}
        entry = await client.ok("waitlist.add", wanted, patient_id=patient)
        booked = await client.ok("appointment.book", {"slotId": slot["id"], "patientId": unique("pat")})
        await client.ok("appointment.cancel", {"appointmentId": booked["id"]})
        mine = service.auth(patient_id=patient)

        async def offered() -> bool:
            status, body, _ = await client.get("/waitlist", limit="500", status="offered")
            return status == 200 and any(e["id"] == entry["id"] for e in body["data"])

        await eventually(offered)
        status, body, _ = await client.post(
            f"/waitlist/{entry['id']}/decline", {}, headers=service.auth(patient_id="someone-else")
        )
        assert status == 403, body
        status, body, _ = await client.post(f"/waitlist/{entry['id']}/decline", {}, headers=mine)
        assert status == 200 and body["data"]["status"] == "waiting" and body["data"]["declinedSlotIds"] == [slot["id"]]
        status, body, _ = await client.post(f"/waitlist/{entry['id']}/decline", {}, headers=mine)
        assert status == 409 and body["error"]["code"] == "INVALID_STATUS_TRANSITION", body
        status, body, _ = await client.post(f"/waitlist/{entry['id']}/cancel", {}, headers=mine)
        assert status == 200 and body["data"]["status"] == "cancelled", body
        seen = await client.events("scheduling.events.waitlist.cancelled",
                                   lambda es: any(e["data"]["id"] == entry["id"] for e in es))  # fmt: skip
        assert seen


async def test_slot_search_filters_by_service_type_and_leaves_out_started_slots(service: Any) -> None:
    async with Client(service) as client:
        service_type = unique("physio")
        practice = await Practice.open(client)
        await client.ok("schedule.update", {"scheduleId": practice.schedule["id"], "serviceType": service_type})
        started, ahead = await practice.slot(-timedelta(minutes=5)), await practice.slot(timedelta(hours=2))
        window = {"from": (now() - timedelta(hours=1)).isoformat(), "to": (now() + timedelta(days=1)).isoformat()}
        status, body, _ = await client.get("/slots", serviceType=service_type, limit="500", **window)
        assert status == 200, body
        assert [s["id"] for s in body["data"]] == [ahead["id"]] and started["id"] != ahead["id"]
        assert body["data"][0]["serviceType"] == service_type
