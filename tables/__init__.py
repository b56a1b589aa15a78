"""Faust tables, declared in one place: per-entity state, per-resource indexes and the decision journal.

All of one resource's keys are written while processing that resource's
partition, so they land in the same changelog partition number and are
restored together on whichever worker owns it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from scheduling.streams.app import Streams
from tables.durable import Changelog, table

#: a table as the actor uses it: a mapping of string keys to JSON values
Table = MutableMapping[str, Any]


@dataclass(frozen=True)
class Tables:
    schedules: Table
    slots: Table
    appointments: Table
    waitlist: Table
    #: token -> ResourceIndex (the resource's waiting waitlist entries); `<home>/saga/<saga id>` ->
    #: WaitingSaga (a saga that home decides)
    resources: Table
    #: "<token>:<day>" -> DayIndex (active appointments starting that UTC day, slot holders);
    #: "<token>:<day>/slots" -> DaySlots (the slots starting that day)
    resource_days: Table
    #: (tenant, caller, routing token, idempotency key) -> the decision record: how a repeat or a redelivery is answered
    journal: Table
    #: partition -> the next command offset its actor expects (agents/cursor.py)
    cursor: Table
    changelog: Changelog = field(default_factory=Changelog)

    @property
    def entities(self) -> dict[str, Table]:
        return {"schedule": self.schedules, "slot": self.slots, "appointment": self.appointments,
                "waitlist": self.waitlist}  # fmt: skip

    @property
    def indexes(self) -> dict[str, Table]:
        return {"resource": self.resources, "day": self.resource_days, "slots": self.resource_days,
                "saga": self.resources}  # fmt: skip


def declare(streams: Streams) -> Tables:
    """The worker's tables on its app; values are JSON objects (the entities' camelCase form)."""
    changelog = Changelog()
    common: dict[str, Any] = {"partitions": streams.settings.partitions, "key_type": str}
    names = ("schedules", "slots", "appointments", "waitlist", "resources", "resource_days", "journal", "cursor")
    declared = {name: table(streams.app, changelog, name, **common) for name in names}
    return Tables(**declared, changelog=changelog)
