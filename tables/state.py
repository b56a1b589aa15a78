"""The domain's `State` port over the tables, and applying a decision to them."""

from __future__ import annotations

from collections import OrderedDict
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel

from domain.model import ENTITY_TYPES, Entity
from domain.resource import DayIndex, DaySlots, ResourceIndex, WaitingSaga, day_key, day_slots_key, saga_key
from scheduling.core.wire import DecisionRecord
from tables import Table, Tables

M = TypeVar("M", bound=BaseModel)


class Parsed:
    """The values of one partition's keys as last read or written, with the models parsed from them.

    Only the partition's own actor writes its keys, so what it last wrote is what the table holds:
    a hit needs neither a store read (a RocksDB get and a JSON decode) nor a parse. A day index holds
    every slot of a resource's day (now `DaySlots` does); parsing it again for every booking was a quarter
    of the worker's CPU. The actor starts a fresh one whenever it (re)gains the partition. Models are frozen, so one
    instance serves many decisions.

    Bounded by weight, least recently used first out: a value weighs one plus the entries of its
    mappings (a day index weighs its slots, holders and appointments), so a worker whose bookings touch
    many resources' days holds as much as one that touches a few (the RSS grew with them at 2,048 values).
    """

    def __init__(self, weight: int = 20_000) -> None:
        self._limit = weight
        self._weight = 0
        self._entries: OrderedDict[tuple[int, str], tuple[Any, BaseModel | None, int]] = OrderedDict()

    def data(self, table: Table, key: str) -> Any:
        """The value of `key`: remembered, else read from the table (and remembered)."""
        slot = (id(table), key)
        hit = self._entries.get(slot)
        if hit is not None:
            self._entries.move_to_end(slot)
            return hit[0]
        data = table.get(key)
        if data is not None:
            self.remember(table, key, data, None)
        return data

    def model(self, table: Table, key: str, data: Any, cls: type[M]) -> M:
        slot = (id(table), key)
        hit = self._entries.get(slot)
        if hit is not None and hit[0] is data and isinstance(hit[1], cls):
            self._entries.move_to_end(slot)
            return hit[1]
        model = cls.model_validate(data)
        self.remember(table, key, data, model)
        return model

    def remember(self, table: Table, key: str, data: Any, model: BaseModel | None) -> None:
        """`key` holds `data` (about to, once flushed); `model` is what it parses to, if known."""
        slot = (id(table), key)
        weight = 1 + sum(len(v) for v in data.values() if isinstance(v, dict | list)) if isinstance(data, dict) else 1
        previous = self._entries.pop(slot, None)
        if previous is not None:
            self._weight -= previous[2]
        self._entries[slot] = (data, model, weight)
        self._weight += weight
        while self._weight > self._limit and len(self._entries) > 1:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._weight -= dropped


class TableState:
    """Reads entities and indexes of the partition being processed, through the writes still pending.

    A batch's decisions are applied here first (`apply`) and reach the tables only with `flush`, once
    their journal entries are durable: a crash before that leaves no entity write without its journal
    entry, so a redelivered command is never decided against its own effects.
    """

    def __init__(self, tables: Tables, parsed: Parsed | None = None) -> None:
        self._tables = tables
        self._parsed = parsed if parsed is not None else Parsed()
        self._pending: dict[tuple[int, str], tuple[Table, dict[str, Any]]] = {}

    def entity(self, kind: str, entity_id: str) -> Entity | None:
        return self._model(self._tables.entities[kind], entity_id, ENTITY_TYPES[kind])

    def resource(self, token: str) -> ResourceIndex | None:
        return self._model(self._tables.resources, token, ResourceIndex)

    def day(self, token: str, day: date) -> DayIndex | None:
        return self._model(self._tables.resource_days, day_key(token, day), DayIndex)

    def day_slots(self, token: str, day: date) -> DaySlots | None:
        return self._model(self._tables.resource_days, day_slots_key(token, day), DaySlots)

    def saga(self, home: str, saga_id: str) -> WaitingSaga | None:
        return self._model(self._tables.resources, saga_key(home, saga_id), WaitingSaga)

    def _model(self, table: Table, key: str, cls: type[M]) -> M | None:
        data = self._read(table, key)
        return self._parsed.model(table, key, data, cls) if data is not None else None

    def apply(self, record: DecisionRecord) -> None:
        """Hold a decision's entities and indexes as pending; none is ever moved back to an older version.

        Re-applying a recorded decision after a redelivery is therefore harmless, and it writes the same
        versions again: a local store may hold them without the changelog having them (tables/local.py).
        """
        for change in record.changes:
            self._hold_if_newer(self._tables.entities[change.kind], str(change.data["id"]), change.data, change.entity)
        for index in record.indexes:
            self._hold_if_newer(self._tables.indexes[index.kind], index.key, index.data, index.model)

    def flush(self) -> None:
        """Write the pending values to the tables (each still only if not older than what the table holds)."""
        for (_, key), (table, data) in self._pending.items():
            current = self._parsed.data(table, key)
            if current is None or current.get("version", 0) <= data["version"]:
                table[key] = data
                if current is not data:
                    self._parsed.remember(table, key, data, None)
        self._pending.clear()

    def _read(self, table: Table, key: str) -> Any:
        held = self._pending.get((id(table), key))
        return held[1] if held is not None else self._parsed.data(table, key)

    def _hold_if_newer(self, table: Table, key: str, data: dict[str, Any], model: BaseModel | None) -> None:
        current = self._read(table, key)
        if current is None or current.get("version", 0) <= data["version"]:
            self._pending[(id(table), key)] = (table, data)
            if model is not None:
                self._parsed.remember(table, key, data, model)
