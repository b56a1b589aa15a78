"""Plain aiokafka clients for the roles outside Faust (bridge, relay, projector)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from scheduling.broker_guards import FETCH_WAIT_MS
from scheduling.config import COMMANDS_TOPIC, DECISIONS_TOPIC, Settings

log = logging.getLogger(__name__)
Batch = list[ConsumerRecord[bytes, bytes]]


def producer(settings: Settings) -> AIOKafkaProducer:
    # acks=all, no idempotence: the embedded broker rejects InitProducerId (docs/broker-guards.md)
    return AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=2)


def consumer(settings: Settings, group: str, *topics: str) -> AIOKafkaConsumer:
    timings = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500} if settings.tansu else {}
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_WAIT_MS,
        max_poll_records=500,
        **timings,
    )


async def ensure_topics(settings: Settings) -> None:
    """Create the command and decision topics with the configured partition count (fixed from then on)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=1)
            for name in (COMMANDS_TOPIC, DECISIONS_TOPIC)
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def run_consumer(
    consumer: AIOKafkaConsumer,
    handle_batch: Callable[[Batch], Awaitable[None]],
    stopping: asyncio.Event,
) -> None:
    """Process batches in partition order; commit only after the batch's effects are acknowledged."""
    while not stopping.is_set():
        batches = await consumer.getmany(timeout_ms=200, max_records=500)
        for tp, records in batches.items():
            await handle_batch(records)
            await consumer.commit({tp: records[-1].offset + 1})
