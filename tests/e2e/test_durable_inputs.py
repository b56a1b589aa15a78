"""Portal requests and registration events published while the bridge and the projector are down are taken
once they are back, exactly once, behind poison messages that are dropped (scheduling/streams/durable.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from conftest import Service, running_dev, unique
from support.client import Client, eventually

HORIZON = {"start": "2027-09-01T00:00:00Z", "end": "2027-10-01T00:00:00Z"}


@pytest.fixture(scope="module")
def own() -> Iterator[Service]:
    with running_dev() as started:
        yield started


def _dead(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
async def test_inputs_published_while_the_roles_are_down_are_taken_once_back(own: Service) -> None:
    service = own
    supervisor = psutil.Process(service.pid)
    async with Client(service) as client:
        body = {"actor": {"reference": unique("Practitioner/d"), "type": "Practitioner"}, "serviceType": "gp",
                "locationId": "Location/main", "planningHorizon": HORIZON}  # fmt: skip
        schedule = await client.ok("schedule.create", body)
        window = {"start": "2027-09-06T09:00:00Z", "end": "2027-09-06T09:30:00Z"}
        slot = await client.ok("slot.create", {"scheduleId": schedule["id"], **window})
        patient, request_id = unique("pat-d"), unique("req-d")
        request = {"requestId": request_id, "patientId": patient, "slotId": slot["id"], "serviceType": "gp"}
        registration = {"patientId": patient, "name": "Grace Hopper", "birthDate": "1906-12-09", "telecom": []}

        supervisor.suspend()  # `scheduling dev` restarts no role meanwhile
        try:
            roles = [service.role("bridge"), service.role("projector")]
            for role in roles:
                role.kill()
            await eventually(lambda: all(_dead(role) for role in roles))  # zombies: their parent is suspended
            for poison, headers in ((b"not json", service.auth()), (b"{}", {}), (b"\x00" * 10, service.auth())):
                await client.nc.publish("portal.appointment.requested", poison, headers=headers)
                await client.nc.publish("registration.patient.registered", poison, headers=headers)
            for _ in range(2):  # the portal sends the same request twice: one appointment
                await client.nc.publish("portal.appointment.requested", json.dumps(request).encode(),
                                        headers=service.auth(sub="patient-portal"))  # fmt: skip
            await client.nc.publish(
                "registration.patient.registered", json.dumps(registration).encode(), headers=service.auth()
            )
            await client.nc.flush()

            async def all_stored() -> bool:  # kept by JetStream while nobody reads them
                info = await client.js.stream_info("SCHEDULING_INPUTS")  # (stored a moment after the flush)
                return bool(info.state.messages >= 9)

            await eventually(all_stored)
        finally:
            supervisor.resume()

        async def created() -> list[dict[str, Any]]:
            events = await client.stored("scheduling.events.appointment.created")
            return [e for e in events if e["causationid"] == request_id]

        (event,) = await eventually(created, within=90, interval=0.5)
        appointment_id = event["data"]["id"]
        assert event["data"]["status"] == "proposed" and event["data"]["patientId"] == patient

        async def enriched() -> Any:
            status, found, _ = await client.get(f"/appointments/{appointment_id}")
            return status == 200 and found["data"].get("patient")

        assert await eventually(enriched, within=30, interval=0.5) == registration
        info = await client.js.consumer_info("SCHEDULING_INPUTS", "scheduling-portal-appointment-requested")
        assert info.num_pending == 0 and info.num_ack_pending == 0
        assert len(await created()) == 1
