"""Reading a table a page at a time, one partition's keys in key order: a sweep over history stays bounded.

On disk (`tables.local.PartitionedStore`) a page reads only the partition's own database from where the
previous page stopped. In memory (Faust's memory store, or a dict in unit tests) every key is in memory
anyway: a page is taken from the sorted keys, and the caller filters the partition's own.
"""

from __future__ import annotations

from typing import Any

from tables import Table
from tables.local import PartitionedStore

#: where the next page starts: the stored key (on disk) or the key (in memory) the previous page ended at
Position = bytes | str | None


def page(table: Table, partition: int, after: Position, limit: int) -> tuple[list[tuple[str, Any]], Position]:
    """Up to `limit` (key, value) pairs after `after`, and where the next page starts (None: from the start)."""
    store = getattr(table, "data", None)
    if isinstance(store, PartitionedStore):
        return store.page(partition, after if isinstance(after, bytes) else None, limit)
    keys = sorted(key for key in list(table.keys()) if not isinstance(after, str) or key > after)
    taken = [(key, table[key]) for key in keys[:limit]]
    return taken, (keys[limit - 1] if len(keys) > limit else None)
