"""Plain aiokafka clients for the roles outside Faust (bridge, relay, projector)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from scheduling.core import metrics
from scheduling.core.config import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC, DECISIONS_TOPIC, Settings
from scheduling.core.wire import ParkedRecord, ParkKind
from scheduling.streams.broker_guards import FETCH_WAIT_MS

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
        if DEAD_LETTERS_TOPIC not in existing:
            wanted.append(NewTopic(DEAD_LETTERS_TOPIC, num_partitions=1, replication_factor=1))
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


#: the longest pause between two attempts while a dependency is away
BACKOFF_MAX = 5.0


async def run_consumer(
    consumer: AIOKafkaConsumer,
    handle_batch: Callable[[Batch], Awaitable[None]],
    stopping: asyncio.Event,
    name: str,
) -> None:
    """Process batches in partition order; commit only after the batch's effects are acknowledged.

    A batch whose handling fails (the handler parks bad records itself, so a failure here is an
    outage: NATS, PostgreSQL or Kafka away) is retried with capped backoff until it succeeds or
    the role is stopped; nothing is committed meanwhile, and the role never exits on its own.
    """
    while not stopping.is_set():
        try:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
        except Exception as exc:  # Kafka away: aiokafka reconnects by itself on the next call
            log.warning("%s: fetching failed (%r); retrying", name, exc)
            await _pause(stopping, 1.0)
            continue
        for tp, records in batches.items():
            if not await _until_handled(handle_batch, records, stopping, name):
                return
            try:
                await consumer.commit({tp: records[-1].offset + 1})
            except Exception as exc:  # redelivered after a rebalance; every effect is idempotent
                log.warning("%s: commit of %s failed: %r", name, tp, exc)


async def _until_handled(
    handle_batch: Callable[[Batch], Awaitable[None]], records: Batch, stopping: asyncio.Event, name: str
) -> bool:
    pause = 0.1
    while not stopping.is_set():
        try:
            await handle_batch(records)
            return True
        except Exception as exc:
            log.warning("%s: batch at offset %s failed (%r); retrying in %.1fs", name, records[0].offset, exc, pause)
            await _pause(stopping, pause)
            pause = min(pause * 2, BACKOFF_MAX)
    return False


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep for a backoff, cut short when the role is asked to stop."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass


def parking(
    consumer: str, kind: ParkKind, *, topic: str, partition: int, offset: int, key: bytes | None,
    value: bytes | None, reason: str,
) -> ParkedRecord:  # fmt: skip
    """The dead-letter record of a record `consumer` sets aside, logged and counted; the caller sends it."""
    log.error("%s: record at %s:%s:%s parked: %s", consumer, topic, partition, offset, reason)
    metrics.PARKED.labels(consumer, kind).inc()
    return ParkedRecord.of(
        consumer, kind, topic=topic, partition=partition, offset=offset, key=key, value=value, reason=reason
    )


async def park(
    producer: AIOKafkaProducer, consumer: str, kind: ParkKind, message: ConsumerRecord[bytes, bytes], reason: str
) -> None:
    """Set a record aside on the dead-letter topic; counted, and acknowledged before the consumer moves on."""
    parked = parking(
        consumer, kind, topic=message.topic, partition=message.partition, offset=message.offset, key=message.key,
        value=message.value, reason=reason,
    )  # fmt: skip
    await producer.send_and_wait(DEAD_LETTERS_TOPIC, parked.encode(), key=consumer.encode())
