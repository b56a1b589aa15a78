"""Consumer lag of the service's groups, measured when /metrics is scraped.

Lag = end offset - committed offset, per partition. On the embedded broker
the end offset comes from a Fetch high watermark (broker defect 1).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from scheduling import metrics
from scheduling.broker_guards import true_end_offsets
from scheduling.config import COMMANDS_TOPIC, DECISIONS_TOPIC, Settings

log = logging.getLogger(__name__)


class LagProbe:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
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
        tps = [
            TopicPartition(t, p) for t in (COMMANDS_TOPIC, DECISIONS_TOPIC) for p in range(self._settings.partitions)
        ]
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(tps)
            if self._settings.tansu:
                ends = await true_end_offsets(bootstrap, ends)
        finally:
            await consumer.stop()
        for group, (topic, gauge) in self._groups.items():
            # a group member that never joins: it only reads the group's committed offsets
            reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
            await reader.start()
            try:
                for tp, end in ends.items():
                    if tp.topic == topic:
                        done = await reader.committed(tp)
                        gauge.labels(str(tp.partition)).set(end - (done or 0))
            finally:
                await reader.stop()
