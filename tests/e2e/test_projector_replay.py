"""The projector is idempotent: replaying the whole decisions topic, twice, yields the same rows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from conftest import SECRET, unique
from support.client import Client, schedule_body

from scheduling.core.auth import Verifier
from scheduling.core.config import DECISIONS_TOPIC, Settings
from scheduling.readmodel import db
from scheduling.readmodel.projector import Projector
from scheduling.streams.broker_guards import true_end_offsets

TABLES = ("schedules", "slots", "appointments", "waitlist_entries")


async def _all_records(kafka: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(DECISIONS_TOPIC, p) for p in consumer.partitions_for_topic(DECISIONS_TOPIC) or []]
        ends = await true_end_offsets(kafka, await consumer.end_offsets(tps))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return records
            for batch in (await consumer.getmany(*behind, timeout_ms=500)).values():
                records += batch
    finally:
        await consumer.stop()


async def _rows(dsn: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: {r["id"]: (r["version"], r["data"]) for r in await conn.fetch(f"SELECT * FROM {t}")} for t in TABLES}
    finally:
        await conn.close()


async def test_replaying_the_decisions_topic_twice_yields_the_live_rows(service: Any) -> None:
    async with Client(service) as client:
        body = schedule_body(
            unique("Practitioner/replay"), "2027-07-05T00:00:00Z", "2027-07-06T00:00:00Z", days=("mon",)
        )
        schedule = await client.ok("schedule.create", body)
        status, body, _ = await client.get(f"/schedules/{schedule['id']}/slots")
        first, second = body["data"][0]["id"], body["data"][1]["id"]
        booked = await client.ok("appointment.book", {"slotId": first, "patientId": unique("pat-r")})
        await client.ok("appointment.reschedule", {"appointmentId": booked["id"], "newSlotId": second})

    replica = f"replay_{unique('db').replace('-', '_')}"
    admin = await asyncpg.connect(service.postgres)
    await admin.execute(f"CREATE DATABASE {replica}")
    await admin.close()
    replica_dsn = service.postgres.rsplit("/", 1)[0] + f"/{replica}"
    await db.migrate(replica_dsn)
    pool = await db.pool(replica_dsn)
    producer = AIOKafkaProducer(bootstrap_servers=service.kafka)
    await producer.start()
    try:
        live = await _rows(service.postgres)  # before the records: other tests' sweeps go on meanwhile
        records = await _all_records(service.kafka)
        verifier = Verifier(replace(Settings(), jwt_secret=SECRET, jwt_public_key=None))
        projector = Projector(pool, None, verifier, producer)
        for _ in range(2):  # at-least-once delivery: everything may come again
            await projector.handle_batch(records)
        replayed = await _rows(replica_dsn)
        for table in TABLES:
            assert set(live[table]) <= set(replayed[table])
            # a row the session's other tests changed after `live` was read is newer in the replay
            assert all(replayed[table][k][0] >= version for k, (version, _) in live[table].items())
            same = {k for k, (version, _) in live[table].items() if replayed[table][k][0] == version}
            assert {k: replayed[table][k] for k in same} == {k: live[table][k] for k in same}
        assert booked["id"] in replayed["appointments"] and replayed["appointments"][booked["id"]][0] == 3
    finally:
        await producer.stop()
        await pool.close()
