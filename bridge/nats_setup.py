"""JetStream streams this service owns, created idempotently at start-up."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from scheduling.core.config import DLQ_STREAM, EVENTS_STREAM, INPUT_SUBJECTS, REMINDER_SUBJECT, Settings
from scheduling.streams.durable import ensure_inputs_stream

NOTIFICATIONS_STREAM = "NOTIFICATIONS"


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    window = settings.duplicate_window
    streams = [
        StreamConfig(name=EVENTS_STREAM, subjects=["scheduling.events.>"], duplicate_window=window),
        StreamConfig(name=DLQ_STREAM, subjects=["scheduling.dlq.>"], duplicate_window=window),
    ]
    try:
        owner: str | None = await js.find_stream_name_by_subject(REMINDER_SUBJECT)
    except NotFoundError:
        owner = None
    if owner in (None, NOTIFICATIONS_STREAM):
        # the notification service may own a stream on its subject; a reminder needs only some stream to ack it
        streams.append(StreamConfig(name=NOTIFICATIONS_STREAM, subjects=[REMINDER_SUBJECT], duplicate_window=window))
    for config in streams:
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
    await ensure_inputs_stream(js, INPUT_SUBJECTS, window)
