"""Outbox relay: decision records -> CloudEvents on JetStream, and dead letters to `scheduling.dlq.>`.

Each event is published with `Nats-Msg-Id` = its CloudEvent id, so a
re-publish after a crash inside the stream's duplicate window is dropped by
the server; the Kafka offset is committed only after every JetStream ack.
A record the relay cannot read, or JetStream refuses for its content, is parked
on the dead-letter topic and the relay moves on; while NATS is away, the batch
is retried (scheduling/streams/kafka.py) and nothing is committed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from nats.js import JetStreamContext

from scheduling.core import metrics
from scheduling.core.failures import is_record_fault
from scheduling.core.wire import DecisionRecord, Unreadable
from scheduling.streams.kafka import Batch, park

log = logging.getLogger(__name__)
CLOUDEVENTS_JSON = "application/cloudevents+json"
#: what an operator needs to inspect and replay a dead-lettered command
DEAD_LETTER_FIELDS = {
    "delivery_id", "command_id", "type", "source", "tenant", "caller", "reply", "outcome", "decided_at", "command",
    "unreadable",
}  # fmt: skip


class Relay:
    def __init__(self, js: JetStreamContext, producer: AIOKafkaProducer) -> None:
        self._js = js
        self._producer = producer

    async def handle_batch(self, records: Batch) -> None:
        """Publish a poll's records in order without waiting between them, then await every JetStream ack.

        JetStream stores what one connection publishes in the order sent, so per entity, events keep version
        order. A record JetStream refuses for its content is parked; any other failure (NATS away) fails the
        batch, which is retried whole: what was stored already is dropped as a duplicate (`Nats-Msg-Id`).
        """
        pending: list[tuple[ConsumerRecord[bytes, bytes], asyncio.Future[Any]]] = []
        for message in records:
            try:
                record = DecisionRecord.decode(message.value, "decision record")
            except Unreadable as exc:
                await park(self._producer, "relay", "unreadable", message, exc.reason)
                continue
            try:
                pending += [(message, ack) for ack in await self._publish(record)]
            except Exception as exc:
                if not is_record_fault(exc):
                    raise
                await park(self._producer, "relay", "unapplicable", message, f"JetStream refused it: {exc!r}")
        results = await asyncio.gather(*(ack for _, ack in pending), return_exceptions=True)
        refused: dict[int, BaseException] = {}
        for (message, _), result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                if not is_record_fault(result):
                    raise result
                refused.setdefault(message.offset, result)
        for message in records:
            if message.offset in refused:
                reason = f"JetStream refused it: {refused[message.offset]!r}"
                await park(self._producer, "relay", "unapplicable", message, reason)

    async def _publish(self, record: DecisionRecord) -> list[asyncio.Future[Any]]:
        """Send the record's events (and its dead letter); the futures resolve with JetStream's acks."""
        acks = [
            await self._js.publish_async(
                f"scheduling.events.{event.type}",
                event.encode(),
                headers={"Nats-Msg-Id": event.id, "Content-Type": CLOUDEVENTS_JSON},
            )
            for event in record.events
        ]
        if record.dead_letter:
            metrics.DEAD_LETTERS.labels(record.type).inc()
            letter = record.model_dump_json(by_alias=True, include=DEAD_LETTER_FIELDS).encode()
            acks.append(
                await self._js.publish_async(
                    f"scheduling.dlq.{record.type}",
                    letter,
                    headers={"Nats-Msg-Id": f"dlq-{record.delivery_id}", "Content-Type": "application/json"},
                )
            )
        return acks
