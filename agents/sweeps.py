"""What a partition-wide sweep walks: the resource indexes of the resources one partition owns, and the sagas
their homes decide (kept beside the indexes, in the same table)."""

from __future__ import annotations

from collections.abc import Iterator

from domain.decisions import State
from domain.resource import SAGA_SEPARATOR, ResourceIndex
from scheduling.core.routing import partition_of
from tables import Table


def owned_indexes(resources: Table, partitions: int, partition: int, state: State) -> Iterator[ResourceIndex]:
    """Each resource index of `partition`, by token (the history is not scanned: only what the indexes list)."""
    for token in sorted(list(resources.keys())):
        if SAGA_SEPARATOR in token or partition_of(token, partitions) != partition:
            continue
        index = state.resource(token)
        if index is not None:
            yield index


def owned_saga_keys(resources: Table, partitions: int, partition: int) -> list[tuple[str, str, str]]:
    """(key, home, saga id) of each saga whose home is on `partition`, waiting or ended (not yet forgotten)."""
    found = []
    for key in sorted(list(resources.keys())):
        home, separator, saga_id = key.partition(SAGA_SEPARATOR)
        if separator and partition_of(home, partitions) == partition:
            found.append((key, home, saga_id))
    return found
