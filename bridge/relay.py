"""Outbox relay: decision records -> CloudEvents on JetStream, and dead letters to `scheduling.dlq.>`.

Each event is published with `Nats-Msg-Id` = its CloudEvent id, so a
re-publish after a crash inside the stream's duplicate window is dropped by
the server; the Kafka offset is committed only after every JetStream ack.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nats.js import JetStreamContext

from scheduling import metrics
from scheduling.kafka import Batch
from scheduling.records import decode, encode

log = logging.getLogger(__name__)
CLOUDEVENTS_JSON = "application/cloudevents+json"


class Relay:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def handle_batch(self, records: Batch) -> None:
        acks = []
        for message in records:
            try:
                record = decode(message.value or b"")
            except ValueError:
                log.error("undecodable decision record at offset %s; skipped", message.offset)
                continue
            acks.extend(self._publish(record))
        await asyncio.gather(*acks)

    def _publish(self, record: dict[str, Any]) -> list[Any]:
        acks = [
            self._js.publish(
                f"scheduling.events.{event['type']}",
                encode(event),
                headers={"Nats-Msg-Id": event["id"], "Content-Type": CLOUDEVENTS_JSON},
            )
            for event in record.get("events", [])
        ]
        if record.get("deadLetter"):
            metrics.DEAD_LETTERS.labels(record.get("type", "unknown")).inc()
            letter = {
                k: record[k]
                for k in (
                    "deliveryId",
                    "commandId",
                    "type",
                    "tenant",
                    "caller",
                    "reply",
                    "outcome",
                    "decidedAt",
                    "command",
                )
                if k in record
            }
            acks.append(
                self._js.publish(
                    f"scheduling.dlq.{record.get('type') or 'unknown'}",
                    encode(letter),
                    headers={"Nats-Msg-Id": f"dlq-{record['deliveryId']}", "Content-Type": "application/json"},
                )
            )
        return acks
