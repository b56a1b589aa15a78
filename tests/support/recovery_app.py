"""A minimal Faust worker with the service's settings and guards, for the table-recovery test.

It writes one table key per `put` message and answers `count` messages with
the table's size, so a test can restart it and see what recovery restored.
"""

from __future__ import annotations

import json
import os

import faust

from scheduling.core.config import Settings
from scheduling.streams import broker_guards
from scheduling.streams.app import faust_settings

settings = Settings()
broker_guards.install()  # the end-offset guard itself obeys SCHEDULING_RECOVERY_GUARD
app = faust.App(os.environ["RECOVERY_APP_ID"], **faust_settings(settings))  # type: ignore[arg-type]
inbox = app.topic("recovery-in", key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
outbox = app.topic("recovery-out", key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
kept = app.Table("kept", key_type=str, partitions=settings.partitions)


@app.agent(inbox, concurrency=1)
async def keep(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        message = json.loads(event.value)
        if message["op"] == "put":
            # many writes from one message, like a schedule opening its slots: multi-record changelog batches
            for key in message["keys"]:
                kept[key] = message["value"]
        else:
            answer = {"nonce": message["nonce"], "count": len(kept), "partition": event.message.partition}
            await app.producer.send_and_wait(
                outbox.get_topic_name(), None, json.dumps(answer).encode(), None, None, None
            )


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    faust.Worker(app, loglevel="INFO", override_logging=False).execute_from_commandline()
