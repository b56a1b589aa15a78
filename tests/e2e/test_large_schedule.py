"""A 90-day pattern (2,080 slots) opens in parts; the reply comes once every slot is visible."""

from __future__ import annotations

from typing import Any

from conftest import unique
from support.client import Client, schedule_body


async def test_a_long_pattern_is_answered_once_all_its_slots_are_queryable(service: Any) -> None:
    async with Client(service) as client:
        weekdays = ("mon", "tue", "wed", "thu", "fri")
        body = schedule_body(
            unique("Practitioner/big"),
            "2027-05-03T00:00:00Z",
            "2027-08-01T00:00:00Z",
            days=weekdays,
            window=("08:00", "16:00"),
        )
        schedule = await client.ok("schedule.create", body)
        assert schedule["slotCount"] == 65 * 32
        ids: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            status, body, _ = await client.get(f"/schedules/{schedule['id']}/slots", **params)
            assert status == 200
            ids += [s["id"] for s in body["data"]]
            cursor = body["nextCursor"]
            if cursor is None:
                break
        assert len(ids) == len(set(ids)) == 65 * 32
