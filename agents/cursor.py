"""The actor's own cursor over the commands topic: no command is skipped, whatever Faust acks.

Faust acks, and so commits, messages it skips while flow control is paused or a
generation changes (recovery, rebalances); a worker restarted after `kill -9` was
seen to skip twelve commands this way. Offsets are therefore only where reading
resumes, not the record of what was done (DESIGN decision 4): each actor keeps the
next offset it expects per partition in the `cursor` table, written with its
decisions, and when a message arrives past it (at the head of a batch, or after a jump
of offsets inside one), it first reads the missing commands from the broker itself and
decides them, in order.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from scheduling.core import metrics
from scheduling.core.config import COMMANDS_TOPIC
from scheduling.streams.broker_guards import FETCH_WAIT_MS
from tables import Table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cursor:
    table: Table
    bootstrap: str

    def expected(self, partition: int) -> int:
        """The next offset the actor of `partition` has not decided yet (0 before its first command)."""
        return int(self.table.get(str(partition), 0))

    def advance(self, partition: int, offset: int) -> None:
        """Record that every command before `offset + 1` on `partition` is decided (a table write)."""
        if offset + 1 > self.expected(partition):
            self.table[str(partition)] = offset + 1

    async def missed(self, partition: int, start: int, stop: int) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
        """The commands in [start, stop) of `partition`, read straight from the broker."""
        log.warning(
            "commands %d..%d of partition %d were skipped by the stream; deciding them now", start, stop - 1, partition
        )
        metrics.SKIPPED_COMMANDS.inc(stop - start)
        tp = TopicPartition(COMMANDS_TOPIC, partition)
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # commands already removed by retention cannot be read back
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )
        await reader.start()
        try:
            reader.assign([tp])
            reader.seek(tp, start)
            position = start
            while position < stop:
                for record in (await reader.getmany(tp, timeout_ms=500)).get(tp, []):
                    if record.offset >= stop:
                        return
                    position = record.offset + 1
                    yield record
        finally:
            await reader.stop()
