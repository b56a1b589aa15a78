"""A booking burst that something interrupts (a SIGKILL, a failpoint), and the checks that nothing was lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from conftest import unique
from support.client import Client, eventually, schedule_body

SLOTS = 24


async def _book_until_answered(client: Client, body: dict[str, Any], key: str) -> dict[str, Any]:
    """What the contract invites: a command whose reply timed out, or that was still being decided
    (UNAVAILABLE), is repeated with the same key."""
    return await until_answered(client, "appointment.book", body, key)


async def until_answered(client: Client, name: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    for _ in range(40):
        try:
            reply = await client.command(name, body, headers={"Nats-Msg-Id": key})
        except TimeoutError:
            continue
        if reply["ok"] or reply["error"]["code"] != "UNAVAILABLE":
            return reply
        await asyncio.sleep(0.25)  # the saga is still running: ask again, as a caller would after a while
    raise AssertionError(f"{name} {key} never answered")


async def interrupted_burst(
    client: Client, service: Any, interrupt: Callable[[], Awaitable[None]], *, first: bool = False
) -> None:
    """Two bookings per slot of a fresh schedule; `interrupt` runs once some are answered (or, `first`, just
    before the burst). Then every slot must be booked exactly once, every other booking refused, the read
    model and the events agreeing."""
    body = schedule_body(unique("Practitioner/f"), "2027-03-01T00:00:00Z", "2027-03-02T00:00:00Z", days=("mon",),
                         window=("08:00", "14:00"))  # fmt: skip
    schedule = await client.ok("schedule.create", body)
    status, page, _ = await client.get(f"/schedules/{schedule['id']}/slots", limit="100")
    slots = [s["id"] for s in page["data"]]
    assert len(slots) == SLOTS
    answered: list[dict[str, Any]] = []

    async def book(i: int) -> dict[str, Any]:
        reply = await _book_until_answered(client, {"slotId": slots[i % SLOTS], "patientId": unique(f"p{i}")},
                                           unique(f"burst{i}"))  # fmt: skip
        answered.append(reply)
        return reply

    if first:
        await interrupt()
    burst = [asyncio.create_task(book(i)) for i in range(2 * SLOTS)]
    if not first:
        await eventually(lambda: len(answered) >= 6, within=60, interval=0.01)
        await interrupt()
    replies = await asyncio.gather(*burst)

    ok = [r["data"] for r in replies if r["ok"]]
    refused = [r["error"]["code"] for r in replies if not r["ok"]]
    by_slot: dict[str, list[dict[str, Any]]] = {}
    for appointment in ok:
        by_slot.setdefault(appointment["slotId"], []).append(appointment)
    doubled = {k: [(a["id"], a["patientId"], a["version"]) for a in v] for k, v in by_slot.items() if len(v) > 1}
    assert len(ok) == SLOTS and sorted(by_slot) == sorted(slots), f"doubled: {doubled}; logs in {service.data_dir}"
    assert set(refused) <= {"SLOT_NOT_AVAILABLE"} and len(refused) == SLOTS

    status, page, _ = await client.get(f"/schedules/{schedule['id']}/slots", limit="100")
    assert {s["status"] for s in page["data"]} == {"busy"}
    for appointment in ok:
        status, shown, _ = await client.get(f"/appointments/{appointment['id']}")
        assert status == 200 and shown["data"]["status"] == "booked"
    mine = {f"appointments/{a['id']}" for a in ok}
    created = await client.events(
        "scheduling.events.appointment.created", lambda es: mine <= {e["subject"] for e in es}, within=60
    )
    ours = [e for e, _ in created if e["data"]["slotId"] in set(slots)]
    assert len(ours) == len({e["id"] for e in ours}) == SLOTS and {e["subject"] for e in ours} == mine
