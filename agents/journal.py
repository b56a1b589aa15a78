"""The idempotency journal's entries, and which ones a partition's actor may forget.

An entry holds the decision record as its JSON text, beside the two fields expiry reads: the record is
encoded once by pydantic (the actor encodes it anyway to check its size) instead of being dumped to nested
dicts and encoded again by the table (a booking's record carries its day index; that was a sixth of the
worker's CPU). Entries written before this held the record's fields themselves; both are read. A saga's
settlement answers its starting command's repeats through a second key, whose entry only names the first
(it held a second copy of the record before: a quarter of a booking's journal bytes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from scheduling.core.routing import partition_of
from scheduling.core.wire import DecisionRecord

#: the field of an entry that holds the record's JSON text
RECORD = "record"
#: the field of an entry that holds no record but names the key of the entry that does
SEE = "see"


def entry(record: DecisionRecord, encoded: bytes) -> dict[str, Any]:
    """The journal entry of `record`, whose JSON text is `encoded`."""
    return {**_expiry_fields(record), RECORD: encoded.decode()}


def reference(record: DecisionRecord, key: str) -> dict[str, Any]:
    """An entry answered by the entry under `key` (a saga's settlement, under its starting command's key): the
    record is not written twice; the same routing key and time expire both together."""
    return {**_expiry_fields(record), SEE: key}


def _expiry_fields(record: DecisionRecord) -> dict[str, Any]:
    """What `expired_keys` reads of every entry."""
    return {"routingKey": record.routing_key, "decidedAt": record.decided_at.isoformat()}


def referred(value: Any) -> str | None:
    """The key a reference entry names; None for an entry that holds its record."""
    see = value.get(SEE) if isinstance(value, dict) else None
    return see if isinstance(see, str) else None


def recorded(value: Any) -> DecisionRecord:
    """The record a journal entry holds (either form), or `Unreadable`."""
    if isinstance(value, dict) and isinstance(value.get(RECORD), str):
        return DecisionRecord.decode(value[RECORD].encode(), "journal entry")
    return DecisionRecord.load(value)


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
