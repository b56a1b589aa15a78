"""One contract for reading a table a page at a time (`tables.pages`), on disk and in memory.

The journal sweep reads history through it a page per minute, so a page must go on exactly where the previous
one stopped, start again from the beginning once the end was reached, and on disk read only the partition's own
database and never Faust's offset key. The RocksDB store is the real one (`tables.local.PartitionedStore`,
opened by a Faust table in a temporary folder; no broker is needed to open or read it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP

from scheduling.core.config import Settings
from scheduling.streams.app import faust_settings
from tables import Table
from tables.durable import Changelog, table
from tables.local import PartitionedStore
from tables.pages import Position, page

PARTITION = 1
OTHER = 2


def _on_disk(folder: Path) -> Iterator[Table]:
    settings = Settings(kafka_url="localhost:1", state_dir=str(folder), app_id=f"pages-{folder.name}")
    app = faust.App(settings.app_id, **faust_settings(settings))  # type: ignore[arg-type]
    journal = table(app, Changelog(), "journal", partitions=4, key_type=str)
    store: Any = journal.data
    assert isinstance(store, PartitionedStore)

    class OnDisk(dict[str, Any]):
        """Writes go to the partition's database, as the actor's do; reads are the pages under test."""

        data = store

        def __setitem__(self, key: str, value: Any) -> None:
            partition = OTHER if key.startswith("other") else PARTITION
            store._db_for_partition(partition).put(store._encode_key(key), store._encode_value(value))
            super().__setitem__(key, value)

        def __delitem__(self, key: str) -> None:
            store._db_for_partition(PARTITION).delete(store._encode_key(key))
            super().__delitem__(key)

    mapping = OnDisk()
    store.set_persisted_offset(TP(topic="scheduling-journal-changelog", partition=PARTITION), 41)
    try:
        yield mapping
    finally:
        for db in store._dbs.values():
            db.close()


@pytest.fixture(params=["memory", "disk"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Table]:
    if request.param == "memory":
        yield {}
    else:
        yield from _on_disk(tmp_path)


def _sweep(journal: Table, after: Position, limit: int) -> tuple[list[str], Position]:
    entries, position = page(journal, PARTITION, after, limit)
    return [key for key, _ in entries if not key.startswith("other")], position


def test_pages_go_on_where_the_last_stopped_and_start_again_at_the_end(journal: Table) -> None:
    keys = [f"k{n:02}" for n in range(7)]
    for key in reversed(keys):
        journal[key] = {"routingKey": "r", "n": key}
    seen: list[str] = []
    position: Position = None
    for _ in range(3):
        found, position = _sweep(journal, position, 3)
        seen += found
    assert seen == keys and position is None  # 3 + 3 + 1, in key order, each once; the next page starts again
    assert _sweep(journal, position, 3)[0] == keys[:3]


def test_a_page_holds_the_values_and_no_key_twice_when_one_is_deleted_between_pages(journal: Table) -> None:
    for n in range(5):
        journal[f"k{n}"] = {"n": n}
    entries, position = page(journal, PARTITION, None, 2)
    assert [value for key, value in entries if not key.startswith("other")] == [{"n": 0}, {"n": 1}]
    del journal["k1"]  # the key the next page goes on after
    found, _ = _sweep(journal, position, 10)
    assert found == ["k2", "k3", "k4"]


def test_on_disk_a_page_reads_only_its_partition_and_never_the_offset_key(tmp_path: Path) -> None:
    for journal in _on_disk(tmp_path):
        journal["mine"] = {"n": 1}
        journal["other-partition"] = {"n": 2}
        entries, position = page(journal, PARTITION, None, 10)
        assert entries == [("mine", {"n": 1})] and position is None


def test_on_disk_a_value_that_cannot_be_decoded_is_read_as_none_not_a_failed_page(tmp_path: Path) -> None:
    for journal in _on_disk(tmp_path):
        journal["a"] = {"n": 1}
        store: Any = getattr(journal, "data")  # noqa: B009 - the store behind the mapping
        store._db_for_partition(PARTITION).put(store._encode_key("b"), b'{"routingKey": "\x00')  # torn JSON
        journal["c"] = {"n": 3}
        entries, _ = page(journal, PARTITION, None, 10)
        assert entries == [("a", {"n": 1}), ("b", None), ("c", {"n": 3})]
