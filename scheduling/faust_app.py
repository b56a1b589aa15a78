"""The Faust app object, its settings and its topics, in one module."""

from __future__ import annotations

import faust

from scheduling import broker_guards
from scheduling.config import COMMANDS_TOPIC, DECISIONS_TOPIC, Settings

settings = Settings()


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
        "store": "memory://",
        "producer_acks": -1,
        "broker_commit_every": 100,
        "broker_commit_interval": 1.0,
    }
    if s.tansu:
        conf.update(
            broker_session_timeout=3,
            broker_heartbeat_interval=0.5,
            broker_request_timeout=30,
            broker_rebalance_timeout=15,
            table_standby_replicas=0,
        )
    return conf


if settings.tansu:
    broker_guards.install()

app = faust.App(settings.app_id, **faust_settings(settings))  # type: ignore[arg-type]


def _raw_topic(name: str) -> faust.TopicT:
    """Bytes in, bytes out: the envelopes and records are JSON the code encodes itself."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )


commands_topic = _raw_topic(COMMANDS_TOPIC)
decisions_topic = _raw_topic(DECISIONS_TOPIC)
