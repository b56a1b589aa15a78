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

from typing import Any

from faust.stores import rocksdb

#: per partition database: small memtables and caches, so memory stays flat however long the history
OPTIONS: dict[str, Any] = {
    "driver": "rocksdict",
    "write_buffer_size": 2 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 * 1024 * 1024,
    "block_cache_compressed_size": 0,
    "max_open_files": 256,
}


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

    def _get(self, key: bytes) -> bytes | None:
        partition = self._named_partition()
        if partition is None:
            value: bytes | None = super()._get(key)
            return value
        found: bytes | None = self._db_for_partition(partition).get(key)
        if found is not None:
            self._key_index[key] = partition
        return found
