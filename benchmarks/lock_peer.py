"""The lock-based peer: the design a team would build instead of partitioned actors, written as well as we can.

One process answers NATS requests on `peer.cmd.appointment.book` with the same client-facing work as the
service (JWT check, the same pydantic DTO), and books in one PostgreSQL transaction: a conditional
`UPDATE` of the slot (the row lock serializes contenders), the patient's time checked as the service checks
it (`PATIENT_DOUBLE_BOOKING`: a transaction-scoped advisory lock on the patient, then a look for an active
appointment of theirs overlapping the slot), an `INSERT` of the appointment and an `INSERT` into an outbox
table. A relay task publishes the outbox to JetStream with `Nats-Msg-Id` and
deletes what was acknowledged. Messages are handled concurrently (bounded), each on a pooled connection.

    python benchmarks/lock_peer.py NATS_URL DATABASE_URL SECRET
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import asyncpg
import jwt
import nats
from nats.aio.msg import Msg

from domain.commands import BookAppointment, parse_as
from domain.errors import DomainError, ErrorCode

SCHEMA = """
CREATE TABLE IF NOT EXISTS peer_slots (id text PRIMARY KEY, status text NOT NULL, version int NOT NULL,
                                       starts timestamptz NOT NULL, ends timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS peer_appointments (id text PRIMARY KEY, slot_id text NOT NULL, patient_id text NOT NULL,
                                              status text NOT NULL, version int NOT NULL,
                                              starts timestamptz NOT NULL, ends timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS peer_appointments_patient ON peer_appointments (patient_id, starts);
CREATE TABLE IF NOT EXISTS peer_outbox (id bigserial PRIMARY KEY, event_id text NOT NULL, body jsonb NOT NULL);
"""
IN_FLIGHT = 64
SUBJECT = "peer.cmd.appointment.book"


async def main(nats_url: str, database_url: str, secret: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=16)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name="PEER_EVENTS", subjects=["peer.events.>"])
    slots = asyncio.Semaphore(IN_FLIGHT)
    wake = asyncio.Event()

    async def book(msg: Msg) -> None:
        try:
            token = (msg.headers or {}).get("Authorization", "").removeprefix("Bearer ")
            claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["tenant"]})
            command = parse_as(BookAppointment, json.loads(msg.data))
            reply = await _book(pool, claims["tenant"], command)
            wake.set()
        except DomainError as error:
            reply = error.as_reply()
        except Exception as exc:  # noqa: BLE001 - a peer that answers everything, like the service
            reply = {"ok": False, "error": {"code": "INTERNAL", "status": 500, "message": repr(exc)}}
        finally:
            slots.release()
        if msg.reply:
            await nc.publish(msg.reply, json.dumps(reply).encode())

    async def on_message(msg: Msg) -> None:
        await slots.acquire()
        asyncio.create_task(book(msg))

    await nc.subscribe(SUBJECT, queue="peer", cb=on_message)
    print("peer ready", flush=True)
    await _relay(pool, js, wake)


async def _book(pool: asyncpg.Pool, tenant: str, command: BookAppointment) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        taken = await conn.fetchrow(
            "UPDATE peer_slots SET status = 'busy', version = version + 1 WHERE id = $1 AND status = 'free' "
            "RETURNING starts, ends",
            command.slot_id,
        )
        if taken is None:
            return {"ok": False, "error": {"code": "SLOT_NOT_AVAILABLE", "status": 409, "message": "slot taken"}}
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", command.patient_id)
        clash = await conn.fetchval(
            "SELECT id FROM peer_appointments WHERE patient_id = $1 AND status = 'booked' AND starts < $3 "
            "AND ends > $2 LIMIT 1",
            command.patient_id, taken["starts"], taken["ends"],
        )  # fmt: skip
        if clash is not None:
            raise DomainError(ErrorCode.PATIENT_DOUBLE_BOOKING, "the patient already holds an overlapping appointment")
        appointment = {"id": f"ap-{uuid.uuid4().hex}", "slotId": command.slot_id, "patientId": command.patient_id,
                       "status": "booked", "version": 1, "tenantId": tenant}  # fmt: skip
        await conn.execute(
            "INSERT INTO peer_appointments (id, slot_id, patient_id, status, version, starts, ends) "
            "VALUES ($1, $2, $3, $4, 1, $5, $6)",
            appointment["id"], command.slot_id, command.patient_id, "booked", taken["starts"], taken["ends"],
        )  # fmt: skip
        event = {"id": uuid.uuid4().hex, "type": "appointment.created", "data": appointment}
        await conn.execute("INSERT INTO peer_outbox (event_id, body) VALUES ($1, $2::jsonb)", event["id"],
                           json.dumps(event))  # fmt: skip
    return {"ok": True, "data": appointment}


async def _relay(pool: asyncpg.Pool, js: Any, wake: asyncio.Event) -> None:
    """Publish the outbox in order, each acknowledged by JetStream, then delete what was published."""
    while True:
        try:
            await asyncio.wait_for(wake.wait(), 0.05)
        except TimeoutError:
            pass
        wake.clear()
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, event_id, body FROM peer_outbox ORDER BY id LIMIT 500")
            if not rows:
                continue
            acks = [
                await js.publish_async(
                    "peer.events.appointment.created", row["body"].encode(), headers={"Nats-Msg-Id": row["event_id"]}
                )  # fmt: skip
                for row in rows
            ]
            await asyncio.gather(*acks)
            await conn.execute("DELETE FROM peer_outbox WHERE id <= $1", rows[-1]["id"])


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
