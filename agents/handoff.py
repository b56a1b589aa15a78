"""Follow-ups handed to this worker's own actors: a saga's next step decided without waiting for a fetch.

A booking is three decisions on two partitions in a row (docs/decisions.md "Work across resources"); each
hop through the commands topic waits for the consumer's next fetch (the embedded broker parks an empty
fetch for half its wait). When the partition a follow-up went to is decided by an actor of this worker, the
actor that produced it hands it over as well: once the broker acknowledged it (while the producing batch's
cursor is still being written), a task takes
the receiving partition's lock and decides the follow-ups there, if they are exactly the next commands that
partition expects (`Cursor.expected` equals their offsets; otherwise the stream delivers them as usual).
The copy the stream delivers later lies below that partition's cursor and is passed over (`receive`).

Nothing about durability changes: a follow-up is decided only after the broker acknowledged it at that
offset, exactly as if the stream had delivered it, under the same lock the partition's own actor holds
while deciding. A partition this worker lost is no longer handed anything, and hand-offs still running
for it are cancelled with its actor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

from scheduling.core import metrics

log = logging.getLogger(__name__)
#: one command message as read: (key, value, partition, offset)
Message = tuple[bytes, "bytes | None", int, int]
#: decide those of a partition's handed messages that are its next commands; returns how many it decided
Decide = Callable[[int, Sequence[Message]], Awaitable[int]]


class LocalPartitions:
    """The partitions this worker's actors decide, each with the lock its deciders take."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: dict[int, set[asyncio.Task[None]]] = {}

    def gain(self, partition: int) -> asyncio.Lock:
        """A new actor decides the partition here; returns its registration (for `lose`)."""
        self._locks[partition] = lock = asyncio.Lock()
        return lock

    def lose(self, partition: int, registration: asyncio.Lock) -> None:
        """The partition's actor stopped (revoked, or the worker stops): nothing more is decided here, unless
        a newer actor of the partition registered meanwhile (its own registration stays)."""
        if self._locks.get(partition) is not registration:
            return
        del self._locks[partition]
        for task in self._tasks.pop(partition, set()):
            task.cancel()

    async def drained(self) -> None:
        """Wait until every hand-off started so far, and those they started, have finished."""
        while pending := [task for tasks in self._tasks.values() for task in tasks]:
            await asyncio.wait(pending)

    @asynccontextmanager
    async def deciding(self, partitions: Iterable[int]) -> AsyncIterator[bool]:
        """Hold the locks of `partitions` (in order); yields whether this worker still decides all of them."""
        wanted = sorted(set(partitions))
        locks = [self._locks.get(p) for p in wanted]
        taken: list[asyncio.Lock] = []
        try:
            for lock in locks:
                if lock is not None:
                    await lock.acquire()
                    taken.append(lock)
            yield all(lock is not None and self._locks.get(p) is lock for p, lock in zip(wanted, locks, strict=True))
        finally:
            for lock in taken:
                lock.release()

    def hand(self, delivered: Sequence[Message], decide: Decide) -> None:
        """Hand the follow-ups the broker acknowledged (with their partitions and offsets) to the local actors."""
        by_partition: dict[int, list[Message]] = {}
        for message in delivered:
            if message[2] in self._locks:
                by_partition.setdefault(message[2], []).append(message)
        for partition, messages in by_partition.items():
            task = asyncio.create_task(self._decide(partition, sorted(messages, key=lambda m: m[3]), decide))
            tasks = self._tasks.setdefault(partition, set())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _decide(self, partition: int, messages: list[Message], decide: Decide) -> None:
        async with self.deciding([partition]) as owned:
            if not owned:
                return
            try:
                decided = await decide(partition, messages)
            except Exception:  # the stream still delivers them: they are decided there
                log.exception("follow-ups handed to partition %d failed; left to the stream", partition)
                return
            metrics.HANDED_FOLLOW_UPS.inc(decided)


def next_run(messages: Sequence[Message], expected: int) -> list[Message]:
    """The messages at offsets expected, expected + 1, ... (sorted by offset); stops at the first gap."""
    run: list[Message] = []
    for message in messages:
        if message[3] != expected + len(run):
            break
        run.append(message)
    return run
