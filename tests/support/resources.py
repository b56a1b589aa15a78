"""Schedules of new resources and their slots, over the external contract (the saga tests' common steps)."""

from __future__ import annotations

from typing import Any

from conftest import unique
from support.client import Client


async def resource(
    client: Client, horizon: dict[str, str], kind: str = "Practitioner", reference: str | None = None
) -> dict[str, Any]:
    """A schedule of a new resource of `kind` over `horizon` (or another schedule of `reference`: the same
    resource's time)."""
    body = {"actor": {"reference": reference or unique(f"{kind}/r"), "type": kind}, "locationId": "Location/main",
            "serviceType": "gp", "planningHorizon": horizon}  # fmt: skip
    return await client.ok("schedule.create", body)


async def slot(client: Client, schedule: dict[str, Any], start: str, end: str) -> str:
    created = await client.ok("slot.create", {"scheduleId": schedule["id"], "start": start, "end": end})
    slot_id: str = created["id"]
    return slot_id


async def slot_of(client: Client, schedule: dict[str, Any], slot_id: str) -> dict[str, Any]:
    """The slot as the read model shows it (status, seats booked, holds)."""
    status, body, _ = await client.get(f"/schedules/{schedule['id']}/slots", limit="50")
    assert status == 200, body
    found: dict[str, Any] = next(s for s in body["data"] if s["id"] == slot_id)
    return found
