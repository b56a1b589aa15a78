"""JetStream streams this service owns, created idempotently at start-up."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

from scheduling.config import DLQ_STREAM, EVENTS_STREAM, REMINDER_SUBJECT, Settings

NOTIFICATIONS_STREAM = "NOTIFICATIONS"


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    streams = [
        StreamConfig(name=EVENTS_STREAM, subjects=["scheduling.events.>"], duplicate_window=settings.duplicate_window),
        StreamConfig(name=DLQ_STREAM, subjects=["scheduling.dlq.>"], duplicate_window=settings.duplicate_window),
        StreamConfig(
            name=NOTIFICATIONS_STREAM, subjects=[REMINDER_SUBJECT], duplicate_window=settings.duplicate_window
        ),
    ]
    for config in streams:
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
