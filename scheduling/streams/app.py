"""The Faust app factory: the app, its settings and its two topics, made when a worker starts.

Nothing happens at import: `create_app` installs the broker guards (embedded broker only),
builds the app from `Settings` and declares the topics; tables and agents are then declared
on the returned `Streams` (tables.declare, agents.register), as cosmicpython's bootstrap does.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from scheduling.core.config import COMMANDS_TOPIC, DECISIONS_TOPIC, Settings
from scheduling.streams import broker_guards
from scheduling.streams.batching import BatchingStream


def faust_settings(s: Settings) -> dict[str, object]:
    """Settings that hold on every broker, plus the timings the embedded one needs.

    At-least-once always: transactions are neither honoured by the embedded
    broker nor needed, because every effect is idempotent (DESIGN decision 4).
    """
    conf: dict[str, object] = {
        "broker": f"kafka://{s.kafka_bootstrap}",
        "processing_guarantee": "at_least_once",
        "topic_partitions": s.partitions,
        "topic_allow_declare": True,
        "table_standby_replicas": s.standby_replicas,
        "web_enabled": False,
        "store": "rocksdb://" if s.state_dir else "memory://",
        "producer_acks": -1,
        "broker_commit_every": 100,
        "broker_commit_interval": 1.0,
        # the actors' batches wait for their first command without a timer (scheduling/streams/batching.py)
        "Stream": BatchingStream,
    }
    if s.state_dir:
        conf["datadir"] = s.state_dir
    if s.tansu:
        conf.update(
            broker_session_timeout=3,
            broker_heartbeat_interval=0.5,
            broker_request_timeout=30,
            broker_rebalance_timeout=15,
            table_standby_replicas=0,
        )
    return conf


@dataclass(frozen=True)
class Streams:
    """The Faust app of one worker and the topics its actors read and write."""

    app: faust.App
    settings: Settings
    commands: faust.TopicT
    decisions: faust.TopicT

    async def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> tuple[int, int]:
        """Produce one record and wait for the broker's acknowledgement: where it was written (partition, offset)."""
        written = await self.app.producer.send_and_wait(topic, key, value, partition, None, None)
        return written.partition, written.offset


def create_app(settings: Settings) -> Streams:
    if settings.tansu:
        broker_guards.install()
    app = faust.App(settings.app_id, **faust_settings(settings))  # type: ignore[arg-type]
    return Streams(
        app=app,
        settings=settings,
        commands=_raw_topic(app, COMMANDS_TOPIC, settings.partitions),
        decisions=_raw_topic(app, DECISIONS_TOPIC, settings.partitions),
    )


def _raw_topic(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    """Bytes in, bytes out: the envelopes and records are typed JSON the code encodes itself."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=partitions
    )
