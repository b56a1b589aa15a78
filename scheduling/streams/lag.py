"""Consumer lag and progress of the service's groups, and the dead-letter topic's size, measured when
/metrics or /readyz is asked.

Lag = end offset - committed offset, per partition. On the embedded broker
the end offset comes from a Fetch high watermark (broker defect 1).
A partition is stalled when it has lag and its committed offset has not moved
for `stall_seconds` (a wedged actor, a crash-looping projector or relay): /readyz
then answers 503, and /metrics shows for how long, per group and partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from scheduling.core import metrics
from scheduling.core.config import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC, DECISIONS_TOPIC, Settings
from scheduling.streams.broker_guards import true_end_offsets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """Where a group's partition was last seen committed, and since when nothing has been left undone or moved."""

    committed: int
    since: float


class LagProbe:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._progress: dict[tuple[str, int], Progress] = {}
        self._stalled: dict[tuple[str, int], float] = {}
        self._groups = {
            settings.app_id: (COMMANDS_TOPIC, metrics.CONSUMER_LAG),
            "scheduling-projector": (DECISIONS_TOPIC, metrics.PROJECTOR_LAG),
            "scheduling-relay": (DECISIONS_TOPIC, metrics.RELAY_LAG),
        }

    async def update(self, within: float = 3.0) -> None:
        try:
            await asyncio.wait_for(self._update(), within)
        except Exception as exc:  # metrics must answer even when the broker does not
            log.warning("consumer lag not measured: %r", exc)

    async def _update(self) -> None:
        bootstrap = self._settings.kafka_bootstrap
        parked = TopicPartition(DEAD_LETTERS_TOPIC, 0)  # one partition (scheduling/streams/kafka.py)
        tps = [
            TopicPartition(t, p) for t in (COMMANDS_TOPIC, DECISIONS_TOPIC) for p in range(self._settings.partitions)
        ] + [parked]
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(tps)
            if self._settings.tansu:
                ends = await true_end_offsets(bootstrap, ends)
        finally:
            await consumer.stop()
        metrics.DEAD_LETTER_TOPIC_RECORDS.set(ends.get(parked, 0))
        for group, (topic, gauge) in self._groups.items():
            # a group member that never joins: it only reads the group's committed offsets
            reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
            await reader.start()
            try:
                for tp, end in ends.items():
                    if tp.topic == topic:
                        done = await reader.committed(tp) or 0
                        gauge.labels(str(tp.partition)).set(end - done)
                        self.observe(group, tp.partition, done, end - done)
            finally:
                await reader.stop()

    def observe(self, group: str, partition: int, committed: int, lag: int) -> None:
        """Record one measurement; a partition with lag whose offset has not moved for long enough is stalled."""
        now, key = self._clock(), (group, partition)
        seen = self._progress.get(key)
        if seen is None or seen.committed != committed or lag <= 0:
            seen = self._progress[key] = Progress(committed, now)
        stalled_for = now - seen.since if lag > 0 else 0.0
        self._stalled[key] = stalled_for
        metrics.PARTITION_COMMITTED.labels(group, str(partition)).set(committed)
        metrics.PARTITION_STALLED_SECONDS.labels(group, str(partition)).set(stalled_for)

    def stalled(self) -> list[str]:
        """`group/partition` of every partition stalled for at least the configured time, as last measured."""
        limit = self._settings.stall_seconds
        return sorted(f"{group}/{partition}" for (group, partition), t in self._stalled.items() if t >= limit)
