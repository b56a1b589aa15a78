"""What a partition-wide sweep walks: the resource indexes of the resources one partition owns."""

from __future__ import annotations

from collections.abc import Iterator

from domain.decisions import State
from domain.resource import ResourceIndex
from scheduling.core.routing import partition_of
from tables import Table


def owned_indexes(resources: Table, partitions: int, partition: int, state: State) -> Iterator[ResourceIndex]:
    """Each resource index of `partition`, by token (the history is not scanned: only what the indexes list)."""
    for token in sorted(list(resources.keys())):
        if partition_of(token, partitions) != partition:
            continue
        index = state.resource(token)
        if index is not None:
            yield index
