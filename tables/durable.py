"""Tables whose changelog writes a decision can await.

Faust sends a table's changelog writes in the background and flushes them before
committing offsets, but its flush gives up after 0.1 s without progress: an offset
can be committed while writes of that command are still unsent, and a crash then
loses them for good (seen: a slot booked twice after a worker was killed). The actor
therefore awaits every changelog write of a decision (`Changelog.written`), in order,
before it moves on.
"""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar
from typing import Any

import faust
from faust.types import FutureMessage, StoreT
from yarl import URL

from tables.local import OPTIONS, PartitionedStore

log = logging.getLogger(__name__)


class Changelog:
    """The changelog writes of one worker's tables that the broker has not acknowledged yet.

    Each partition's actor runs in a task of its own and calls `begin` there: its writes are then
    tracked apart, so one partition never waits for another's (writes outside any actor share one list).
    """

    def __init__(self) -> None:
        self._shared: list[FutureMessage] = []
        self._mine: ContextVar[list[FutureMessage] | None] = ContextVar(f"changelog-{id(self)}", default=None)
        self._partition: ContextVar[int | None] = ContextVar(f"partition-{id(self)}", default=None)

    def begin(self) -> None:
        """From now on, the writes of the calling task (and the tasks it starts) are tracked on their own."""
        self._mine.set([])

    def deciding(self, partition: int) -> None:
        """The calling task writes for `partition`: its table keys go to that changelog partition.

        Faust takes the partition from the event being iterated; a batch is decided after its events
        were taken, so the actor names the partition itself (all of a resource's keys stay together).
        """
        self._partition.set(partition)

    @property
    def partition(self) -> int | None:
        return self._partition.get()

    @property
    def unacknowledged(self) -> list[FutureMessage]:
        mine = self._mine.get()
        return mine if mine is not None else self._shared

    async def written(self) -> None:
        """Wait until the broker acknowledged every changelog write made so far.

        A write the broker refused is lost for this process's tables: the worker exits at once,
        without committing, so the command is redelivered and replayed from its journal entry
        (or decided afresh if the journal entry itself was the lost write).
        """
        while self.unacknowledged:
            try:
                await self.unacknowledged[0]
            except Exception:
                log.critical("a changelog write failed; exiting so the command is redelivered", exc_info=True)
                os._exit(70)
            self.unacknowledged.pop(0)


class DurableTable(faust.Table[str, Any]):
    """A Faust table that hands every changelog write to its worker's `Changelog`."""

    changelog: Changelog

    def partition_for_key(self, key: Any) -> int | None:
        partition = self.changelog.partition
        return partition if partition is not None else super().partition_for_key(key)

    def _new_store_by_url(self, url: str | URL) -> StoreT[Any, Any]:
        """On disk, the store that follows the partition the actor named; in memory, Faust's own."""
        if URL(str(url)).scheme != "rocksdb":
            return super()._new_store_by_url(url)
        return PartitionedStore(
            url, self.app, self, table_name=self.name, key_type=self.key_type, key_serializer=self.key_serializer,
            value_serializer=self.value_serializer, value_type=self.value_type, loop=self.loop,
            options=dict(OPTIONS),
        )  # fmt: skip

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        future: FutureMessage = super().send_changelog(*args, **kwargs)
        self.changelog.unacknowledged.append(future)
        return future


def table(app: faust.App, changelog: Changelog, name: str, **kwargs: Any) -> DurableTable:
    created = DurableTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    created.changelog = changelog
    app.tables.add(created)
    return created
