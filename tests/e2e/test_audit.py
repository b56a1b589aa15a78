"""AuditClient: every command, accepted or refused, is recorded append-only in PostgreSQL."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from conftest import unique
from support.client import Client, eventually

HORIZON = {"start": "2027-02-01T00:00:00Z", "end": "2027-02-05T00:00:00Z"}


async def test_accepted_and_refused_commands_are_audited(service: Any) -> None:
    async with Client(service) as client:
        key = unique("audit")
        schedule = await client.ok(
            "schedule.create",
            {
                "actor": {"reference": unique("Practitioner/a"), "type": "Practitioner"},
                "locationId": "loc",
                "serviceType": "gp",
                "planningHorizon": HORIZON,
            },
            headers={"Nats-Msg-Id": key},
        )
        refused = await client.command("slot.create", {"scheduleId": schedule["id"], "start": "x"})
        assert refused["error"]["code"] == "VALIDATION_FAILED"
        unauthenticated = await client.command("slot.create", {}, headers={"Authorization": "Bearer nope"})
        assert unauthenticated["error"]["code"] == "UNAUTHENTICATED"
        missing = unique("missing")
        not_found = await client.command(
            "appointment.cancel", {"appointmentId": "ap-000000000000-none"}, headers={"Nats-Msg-Id": missing}
        )
        assert not_found["error"]["code"] == "APPOINTMENT_NOT_FOUND"

    conn = await asyncpg.connect(service.postgres)
    try:
        row = await conn.fetchrow("SELECT * FROM audit_log WHERE command_id = $1", key)
        assert row is not None
        assert (row["tenant_id"], row["caller"], row["command_type"], row["outcome"]) == (
            "t1", "tester", "schedule.create", "ok",
        )  # fmt: skip
        row = await conn.fetchrow("SELECT * FROM audit_log WHERE command_id = $1", missing)
        assert (
            row is not None
            and row["outcome"] == "APPOINTMENT_NOT_FOUND"
            and row["command_type"] == "appointment.cancel"
        )

        async def bridge_refusals_recorded() -> bool:
            # refused by the bridge before any actor: answered at once, recorded asynchronously
            rows = await conn.fetch("SELECT outcome FROM audit_log WHERE command_type = 'slot.create'")
            return {"VALIDATION_FAILED", "UNAUTHENTICATED"} <= {r["outcome"] for r in rows}

        await eventually(bridge_refusals_recorded)
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM audit_log WHERE command_id = $1", key)
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE audit_log SET outcome = 'ok' WHERE command_id = $1", missing)
    finally:
        await conn.close()
