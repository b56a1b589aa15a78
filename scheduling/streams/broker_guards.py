"""Guards around the embedded Kafka-protocol broker's measured defects (docs/broker-guards.md).

Each guard is installed in code, not left to a README footnote:

- ListOffsets(LATEST) under-reports a partition's end when its newest batch
  holds several records; Faust's table recovery would stop short and silently
  drop the changelog's tail. `_highwaters` is corrected from a Fetch's high
  watermark, which the broker reports right.
- Faust fixes the worker consumer's fetch wait at 1500 ms and the broker
  sleeps half of it on an empty fetch: the wait is cut to FETCH_WAIT_MS.
- Transactions and idempotent producers fail on this broker; the app's
  settings (scheduling.streams.app) never ask for them.
- Group membership timing and standby replicas are settings, also there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 50
_installed = False


def recovery_guard_enabled() -> bool:
    """The end-offset guard can be switched off only to prove, in a test, that it is needed."""
    return os.environ.get("SCHEDULING_RECOVERY_GUARD", "on") != "off"


async def true_end_offsets(
    bootstrap: str, reported: Mapping[TopicPartition, int], *, timeout_ms: int = 5000
) -> dict[TopicPartition, int]:
    """End offsets taken from Fetch high watermarks, starting just before the reported end.

    The reported end is at least the newest batch's base offset + 1, so a fetch
    from (reported - 1) returns that batch and with it the real high watermark.
    """
    result = dict(reported)
    pending = {tp for tp, end in reported.items() if end > 0}
    if not pending:
        return result
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=FETCH_WAIT_MS,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        consumer.assign(sorted(pending, key=lambda tp: (tp.topic, tp.partition)))
        for tp in pending:
            consumer.seek(tp, reported[tp] - 1)
        deadline_polls = max(1, timeout_ms // 100)
        for _ in range(deadline_polls):
            await consumer.getmany(*pending, timeout_ms=100)
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is not None:
                    result[tp] = max(reported[tp], high)
                    pending.discard(tp)
            if not pending:
                break
        if pending:
            log.warning("no high watermark fetched for %s; using the reported end offsets", sorted(pending))
    finally:
        await consumer.stop()
    corrected = {tp: (reported[tp], end) for tp, end in result.items() if end != reported[tp]}
    if corrected:
        log.info("end offsets corrected from fetch high watermarks: %s", corrected)
    return result


def _patch_highwaters() -> None:
    original = faust_aiokafka.AIOKafkaConsumerThread._highwaters

    async def _highwaters(self: Any, partitions: Iterable[TopicPartition]) -> Mapping[TopicPartition, int]:
        reported = await original(self, list(partitions))
        if not recovery_guard_enabled() or self.consumer.in_transaction:
            return reported
        bootstrap = ",".join(faust_aiokafka.server_list(self.transport.url, self.transport.default_port))
        return await true_end_offsets(bootstrap, reported)

    setattr(faust_aiokafka.AIOKafkaConsumerThread, "_highwaters", _highwaters)  # noqa: B010 (a patch)


def _patch_fetch_wait() -> None:
    original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer

    def _create_worker_consumer(self: Any, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS
        return consumer

    setattr(faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer", _create_worker_consumer)  # noqa: B010


def install() -> None:
    """Install the guards once per process (idempotent)."""
    global _installed
    if _installed:
        return
    _patch_highwaters()
    _patch_fetch_wait()
    _installed = True
