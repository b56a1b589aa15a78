"""The domain's `State` port over the tables, and applying a decision to them."""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.model import ENTITY_TYPES, Entity
from domain.resource import DayIndex, ResourceIndex, day_key
from scheduling.core.wire import DecisionRecord
from tables import Table, Tables


class TableState:
    """Reads entities and indexes of the partition being processed; writes a decision's changes."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def entity(self, kind: str, entity_id: str) -> Entity | None:
        data = self._tables.entities[kind].get(entity_id)
        return ENTITY_TYPES[kind].model_validate(data) if data is not None else None

    def resource(self, token: str) -> ResourceIndex | None:
        data = self._tables.resources.get(token)
        return ResourceIndex.model_validate(data) if data is not None else None

    def day(self, token: str, day: date) -> DayIndex | None:
        data = self._tables.resource_days.get(day_key(token, day))
        return DayIndex.model_validate(data) if data is not None else None

    def apply(self, record: DecisionRecord) -> None:
        """Write a decision's entities and indexes; none is ever moved back to an older version.

        Re-applying a recorded decision after a redelivery is therefore harmless.
        """
        for change in record.changes:
            _write_if_newer(self._tables.entities[change.kind], str(change.data["id"]), change.data)
        for index in record.indexes:
            _write_if_newer(self._tables.indexes[index.kind], index.key, index.data)


def _write_if_newer(table: Table, key: str, data: dict[str, Any]) -> None:
    current = table.get(key)
    if current is None or current.get("version", 0) < data["version"]:
        table[key] = data
