"""Outbox relay: decision records -> CloudEvents on JetStream, and dead letters to `scheduling.dlq.>`.

Each event is published with `Nats-Msg-Id` = its CloudEvent id, so a
re-publish after a crash inside the stream's duplicate window is dropped by
the server; the Kafka offset is committed only after every JetStream ack.
"""

from __future__ import annotations

import logging
from typing import Any

from nats.js import JetStreamContext

from scheduling import metrics
from scheduling.kafka import Batch
from scheduling.records import decode, encode

log = logging.getLogger(__name__)
CLOUDEVENTS_JSON = "application/cloudevents+json"
#: what an operator needs to inspect and replay a dead-lettered command
DEAD_LETTER_FIELDS = (
    "deliveryId", "commandId", "type", "source", "tenant", "caller", "reply", "outcome", "decidedAt", "command",
)  # fmt: skip


class Relay:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def handle_batch(self, records: Batch) -> None:
        """Publish in record order, each acknowledged before the next: per entity, events keep version order."""
        for message in records:
            try:
                record = decode(message.value or b"")
            except ValueError:
                log.error("undecodable decision record at offset %s; skipped", message.offset)
                continue
            await self._publish(record)

    async def _publish(self, record: dict[str, Any]) -> None:
        for event in record.get("events", []):
            await self._js.publish(
                f"scheduling.events.{event['type']}",
                encode(event),
                headers={"Nats-Msg-Id": event["id"], "Content-Type": CLOUDEVENTS_JSON},
            )
        if record.get("deadLetter"):
            metrics.DEAD_LETTERS.labels(record.get("type", "unknown")).inc()
            letter = {k: record[k] for k in DEAD_LETTER_FIELDS if k in record}
            await self._js.publish(
                f"scheduling.dlq.{record.get('type') or 'unknown'}",
                encode(letter),
                headers={"Nats-Msg-Id": f"dlq-{record['deliveryId']}", "Content-Type": "application/json"},
            )
