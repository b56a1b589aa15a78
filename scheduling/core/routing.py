"""Partition arithmetic shared by the bridge and the actors."""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import murmur2

from scheduling.core.wire import Claims, CommandEnvelope


def partition_of(token: str, partitions: int) -> int:
    """The partition the default partitioner gives a routing token (the bridge's message key)."""
    return int(murmur2(token.encode()) & 0x7FFFFFFF) % partitions


def fan_out(
    partitions: int, command_type: str, claims: Claims, body: dict[str, Any], command_id: str, source: str
) -> list[tuple[int, CommandEnvelope]]:
    """One command per partition, for work each actor does over what it owns (reminders, journal expiry)."""
    return [
        (p, CommandEnvelope.new(command_type=command_type, body=body, claims=claims, command_id=f"{command_id}:{p}",
                                reply_to=None, source=source))
        for p in range(partitions)
    ]  # fmt: skip
