"""Hostile input on the real stack: nothing a client or a bad record sends can stop the service.

Each poison record is written straight onto a topic, on the partition of a resource that is
in use, and followed by a valid booking of that resource that must be answered promptly. The
record itself is answered when it names a usable inbox, and parked on the dead-letter topic
with the reason and its offset either way.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from conftest import unique
from support import metrics
from support.client import Client, eventually, schedule_body

from domain.ids import token_of

COMMANDS, DECISIONS, DEAD_LETTERS = "scheduling-commands", "scheduling-decisions", "scheduling-dead-letters"
PROMPTLY = 5.0  # seconds: the timeout of the booking that follows each poison record


async def _slots(client: Client, count: int) -> list[str]:
    body = schedule_body(unique("Practitioner/poison"), "2027-09-06T00:00:00Z", "2027-09-07T00:00:00Z",
                         days=("mon",), window=("08:00", "20:00"), slot_minutes=15)  # fmt: skip
    schedule = await client.ok("schedule.create", body)
    status, page, _ = await client.get(f"/schedules/{schedule['id']}/slots", limit="100")
    assert status == 200 and len(page["data"]) >= count
    return [s["id"] for s in page["data"][:count]]


async def _book_promptly(client: Client, slot_id: str) -> None:
    raw = json.dumps({"slotId": slot_id, "patientId": unique("pat-after-poison")}).encode()
    msg = await client.nc.request(
        "scheduling.cmd.appointment.book", raw, timeout=PROMPTLY, headers=client.service.auth()
    )
    reply = json.loads(msg.data)
    assert reply["ok"], reply


async def _parked(service: Any, consumer: str, topic: str, offsets: set[tuple[int, int]]) -> dict[tuple[int, int], Any]:
    """The dead-letter records of `consumer` for (partition, offset) of `topic`, once all are there."""
    found: dict[tuple[int, int], Any] = {}

    async def read() -> bool:
        reader = AIOKafkaConsumer(bootstrap_servers=service.kafka, auto_offset_reset="earliest")
        await reader.start()
        try:
            tp = TopicPartition(DEAD_LETTERS, 0)
            reader.assign([tp])
            await reader.seek_to_beginning(tp)
            end = (await reader.end_offsets([tp]))[tp]
            while end and (await reader.position(tp)) < end:
                for message in (await reader.getmany(tp, timeout_ms=500)).get(tp, []):
                    parked = json.loads(message.value)
                    where = (parked["partition"], parked["offset"])
                    if parked["consumer"] == consumer and parked["topic"] == topic and where in offsets:
                        found[where] = parked
        finally:
            await reader.stop()
        return set(found) == offsets

    await eventually(read, within=20, interval=0.5)
    return found


def _envelope(body: Any, reply_to: str | None, tenant: Any = "t1", **fields: Any) -> dict[str, Any]:
    return {"deliveryId": unique("d"), "type": "appointment.book", "body": body, "commandId": unique("c"),
            "claims": {"tenant": tenant, "sub": "poisoner", "scope": "scheduling:read scheduling:write"},
            "replyTo": reply_to, "source": "nats", **fields}  # fmt: skip


def _command_corpus(inbox: str, slot_id: str) -> list[tuple[str, bytes | None, str | None]]:
    """(name, value, expected error code on `inbox` or None when no inbox can be trusted)."""
    book = {"slotId": slot_id, "patientId": "pat-poison"}
    no_ids = {k: v for k, v in _envelope(book, inbox).items() if k not in ("deliveryId", "commandId")}
    no_type = {k: v for k, v in _envelope(book, inbox).items() if k not in ("type", "body")}
    deep = b'{"deliveryId":"d","type":"appointment.book","replyTo":"' + inbox.encode() + b'","body":' + b"[" * 5000
    return [
        ("empty claims only", json.dumps({"claims": {}}).encode(), None),
        ("no delivery or command id", json.dumps(no_ids).encode(), "VALIDATION_FAILED"),
        ("no type or body", json.dumps(no_type).encode(), "VALIDATION_FAILED"),
        ("body nested 5000 deep", deep + b"]" * 5000 + b"}", None),
        ("not JSON", b"\xff\xfe{not json", None),
        ("empty value", None, None),
        ("claims without tenant", json.dumps(_envelope(book, inbox, tenant=None) | {"claims": {"sub": "x"}}).encode(),
         "UNAUTHENTICATED"),
        ("NUL in a text field", json.dumps(_envelope({**book, "description": "a\u0000b"}, inbox)).encode(),
         "VALIDATION_FAILED"),
        ("lone surrogate", json.dumps(_envelope({**book, "patientId": "\ud800"}, inbox)).encode(), "VALIDATION_FAILED"),
        ("type as an object", json.dumps(_envelope(book, inbox, type={"a": 1})).encode(), "VALIDATION_FAILED"),
        ("deliveryId as a number", json.dumps(_envelope(book, inbox, deliveryId=7)).encode(), "VALIDATION_FAILED"),
        ("tenant as an object", json.dumps(_envelope(book, inbox, tenant={"t": 1})).encode(), "VALIDATION_FAILED"),
        ("replyTo not a subject", json.dumps(_envelope(book, "a b\r\nc")).encode(), None),
        ("NaN", json.dumps(_envelope({**book, "priority": float("nan")}, inbox)).encode(), "VALIDATION_FAILED"),
    ]  # fmt: skip


async def test_poison_commands_are_answered_or_parked_and_the_partition_moves_on(service: Any, producer: Any) -> None:
    async with Client(service) as client:
        inbox = client.nc.new_inbox()
        replies = await client.nc.subscribe(inbox)
        corpus_slot, *slots = await _slots(client, 16)
        key = token_of(corpus_slot).encode()
        written: set[tuple[int, int]] = set()
        expected_codes = []
        for (name, value, code), slot in zip(_command_corpus(inbox, corpus_slot), slots, strict=False):
            meta = await producer.send_and_wait(COMMANDS, value, key=key)
            written.add((meta.partition, meta.offset))
            await _book_promptly(client, slot)  # the next valid command is answered promptly
            if code is not None:
                expected_codes.append((name, code))
        answered = [json.loads((await replies.next_msg(timeout=PROMPTLY)).data) for _ in expected_codes]
        assert sorted(r["error"]["code"] for r in answered) == sorted(code for _, code in expected_codes), answered
        assert all(r["ok"] is False and r["error"]["status"] in (400, 401) for r in answered)
        assert all(r["error"]["details"]["offset"] in {o for _, o in written} for r in answered)
        parked = await _parked(service, "actor", COMMANDS, written)
        assert all(p["kind"] == "unreadable" and p["reason"] for p in parked.values())
        assert 'scheduling_parked_records_total{consumer="actor",reason="unreadable"}' in await _metrics(client)

        async def topic_size_counted() -> bool:
            """The dead-letter topic's size (every role's parked records, all time) covers at least these (it
            is measured with the lag at each scrape: a scrape whose probe timed out shows the last size)."""
            return await metrics.value(service.http, "scheduling_dead_letter_topic_records") >= len(parked)

        await eventually(topic_size_counted, within=30, interval=0.5)


async def _metrics(client: Client) -> str:
    assert client.http is not None
    async with client.http.get("/metrics") as response:
        assert response.status == 200
        return await response.text()


def _decision(inbox: str | None, **fields: Any) -> dict[str, Any]:
    return {"deliveryId": unique("d"), "commandId": unique("c"), "type": "appointment.book", "tenant": "t1",
            "caller": "poisoner", "replyTo": inbox, "reply": {"ok": True, "data": {}}, "outcome": "ok",
            "decidedAt": "2027-01-01T00:00:00+00:00", **fields}  # fmt: skip


def _decision_corpus(inbox: str) -> list[tuple[str, bytes | None, str | None]]:
    event = {"id": unique("e"), "type": "appointment.created", "subject": "appointments/x", "time": "2027-01-01",
             "tenantid": "t1", "causationid": "c", "data": {}}  # fmt: skip
    return [
        ("type as an object", json.dumps(_decision(inbox, type={"a": 1})).encode(), "VALIDATION_FAILED"),
        ("tenant as a number", json.dumps(_decision(inbox, tenant=5)).encode(), "VALIDATION_FAILED"),
        ("sub as an object", json.dumps(_decision(inbox, caller={"x": 1})).encode(), "VALIDATION_FAILED"),
        ("deliveryId as a number", json.dumps(_decision(inbox, deliveryId=9)).encode(), "VALIDATION_FAILED"),
        ("event type not a subject", json.dumps(_decision(None, events=[{**event, "type": "a b"}])).encode(), None),
        ("NUL in an entity", json.dumps(_decision(inbox, changes=[{"kind": "slot", "data": {"id": "a\u0000"}}]))
         .encode(), "VALIDATION_FAILED"),
        ("an entity that is not one", json.dumps(_decision(inbox, changes=[{"kind": "slot", "data": {}}])).encode(),
         "VALIDATION_FAILED"),
        ("not JSON", b"{{{", None),
        ("empty", None, None),
        ("deep", b"[" * 5000 + b"]" * 5000, None),
    ]  # fmt: skip


async def test_poison_decision_records_are_parked_by_projector_and_relay(service: Any, producer: Any) -> None:
    async with Client(service) as client:
        inbox = client.nc.new_inbox()
        replies = await client.nc.subscribe(inbox)
        slots = await _slots(client, 12)
        written: set[tuple[int, int]] = set()
        codes = []
        for (name, value, code), slot in zip(_decision_corpus(inbox), slots, strict=False):
            meta = await producer.send_and_wait(DECISIONS, value, key=token_of(slot).encode())
            written.add((meta.partition, meta.offset))
            await _book_promptly(client, slot)
            if code is not None:
                codes.append((name, code))
        answered = [json.loads((await replies.next_msg(timeout=PROMPTLY)).data) for _ in codes]
        assert sorted(r["error"]["code"] for r in answered) == sorted(code for _, code in codes), answered
        for consumer in ("projector", "relay"):
            parked = await _parked(service, consumer, DECISIONS, written)
            assert all(p["kind"] == "unreadable" and p["reason"] for p in parked.values())
            for (partition, offset), p in parked.items():
                assert (p["partition"], p["offset"]) == (partition, offset)
                base64.b64decode(p["valueBase64"], validate=True)
