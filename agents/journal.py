"""Expiry of the idempotency journal: which entries one partition's actor may forget."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from scheduling.core.routing import partition_of


def expired_keys(
    entries: Iterable[tuple[str, dict[str, Any]]], partition: int, partitions: int, cutoff: datetime
) -> list[str]:
    """Keys decided before `cutoff` that belong to `partition`.

    Only the owning partition's actor deletes a key, so the tombstone lands in the changelog
    partition that holds the entry.
    """
    return [key for key, record in entries if _owned_before(record, partition, partitions, cutoff)]


def _owned_before(record: Any, partition: int, partitions: int, cutoff: datetime) -> bool:
    """An entry without a readable routing key or time (none is written so) is left alone, never a crash."""
    try:
        owned = partition_of(str(record["routingKey"]), partitions) == partition
        return owned and datetime.fromisoformat(str(record["decidedAt"])) < cutoff
    except (KeyError, TypeError, ValueError):
        return False
