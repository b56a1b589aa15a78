"""The worker's local table store on disk (RocksDB through rocksdict): restart restores only the tail.

With the in-memory store a restarted worker read every changelog record of its partitions again
(40 s after 10,000 bookings) and held all of them in memory. On disk, Faust remembers per partition
the last changelog offset the broker acknowledged, and a restarted worker reads only what came after.

Faust's RocksDB store picks a key's partition from the event being processed; a batch is decided
after its events were taken, so this store takes the partition the actor named
(`Changelog.deciding`) instead, as the table does for its changelog writes.

Local writes can run ahead of the changelog (a crash between `put` and the broker's ack). That is
safe here because the actor writes entities only after their journal entry was acknowledged, and a
redelivered command re-writes its journal entry and entities, so the changelog catches up
(docs/write-path.md, "local store").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

import rocksdict
from faust.stores import rocksdb

log = logging.getLogger(__name__)

#: per partition database: small memtables; its block cache is the worker's shared one (`Budget`)
OPTIONS: dict[str, Any] = {
    "driver": "rocksdict",
    "write_buffer_size": 2 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 1024 * 1024,
    "block_cache_compressed_size": 0,
    "max_open_files": 256,
}
#: what all of one worker's table databases may hold in memory together, however many there are
BLOCK_CACHE_BYTES = 32 * 1024 * 1024
WRITE_BUFFER_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Budget:
    """The memory every table database of one worker shares: one block cache (index and filter blocks
    included, which otherwise grow with the data on disk) and one budget for memtables. Without it each of
    the 32 databases (8 tables x 4 partitions) held its own, and the worker's RSS grew with history."""

    cache: rocksdict.Cache
    buffers: rocksdict.WriteBufferManager


@cache
def budget() -> Budget:
    """Made when the first database opens (nothing is allocated at import)."""
    return Budget(rocksdict.Cache(BLOCK_CACHE_BYTES), rocksdict.WriteBufferManager(WRITE_BUFFER_BYTES, False))


class BudgetedOptions(rocksdb.RocksDBOptions):
    """Faust's RocksDB options, with the worker's shared cache and memtable budget."""

    def as_options(self) -> rocksdict.Options:
        options: rocksdict.Options = super().as_options()
        shared = budget()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(shared.cache)
        table.set_cache_index_and_filter_blocks(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(shared.buffers)
        return options


class PartitionedStore(rocksdb.Store):
    """RocksDB per partition, keyed by the partition the deciding actor named."""

    def _named_partition(self) -> int | None:
        changelog = getattr(self.table, "changelog", None)
        return changelog.partition if changelog is not None else None

    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = self._named_partition()
        if partition is None:
            super()._set(key, value)
            return
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)

    def page(self, partition: int, after: bytes | None, limit: int) -> tuple[list[tuple[Any, Any]], bytes | None]:
        """Up to `limit` decoded (key, value) pairs of one partition's database, in key order, after the stored
        key `after` (from the start if None); and the stored key to resume after (None: the end was reached).

        A sweep over history reads it a page at a time: `table.items()` reads every partition's database whole
        (a journal of ~360,000 entries stalled the worker's event loop for over half a minute)."""
        db = self._db_for_partition(partition)
        found: list[tuple[Any, Any]] = []
        last: bytes | None = None
        for key, value in db.items(from_key=after):
            if key == self.offset_key or key == after:
                continue
            if len(found) == limit:
                return found, last
            found.append((self._decode_key(key), self._readable(key, value)))
            last = key
        return found, None

    def _readable(self, key: bytes, value: bytes) -> Any:
        """The decoded value; None for one that cannot be decoded (logged), so a sweep passes it instead of failing
        on the same page every minute."""
        try:
            return self._decode_value(value)
        except Exception as exc:
            log.warning("%s: the value of %r cannot be decoded (%r); passed over", self.table_name, key[:80], exc)
            return None

    def _get(self, key: bytes) -> bytes | None:
        partition = self._named_partition()
        if partition is None:
            value: bytes | None = super()._get(key)
            return value
        found: bytes | None = self._db_for_partition(partition).get(key)
        if found is not None:
            self._key_index[key] = partition
        return found
