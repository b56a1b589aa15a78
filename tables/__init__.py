"""Faust tables, declared in one place: per-entity state, per-resource indexes and the decision journal.

All of one resource's keys are written while processing that resource's
partition, so they land in the same changelog partition number and are
restored together on whichever worker owns it.
"""

from __future__ import annotations

from scheduling.faust_app import app, settings
from tables.durable import table

#: values are JSON objects (the entities' camelCase form), keys plain strings
_common = {"partitions": settings.partitions, "key_type": str}

schedules = table(app, "schedules", **_common)
slots = table(app, "slots", **_common)
appointments = table(app, "appointments", **_common)
waitlist = table(app, "waitlist", **_common)
#: token -> ResourceIndex (the resource's schedules and waiting waitlist entries)
resources = table(app, "resources", **_common)
#: "<token>:<day>" -> DayIndex (slots and active appointments starting that UTC day, slot holders)
resource_days = table(app, "resource_days", **_common)
#: (tenant, caller, routing token, idempotency key) -> the decision record: how a repeat or a redelivery is answered
journal = table(app, "journal", **_common)

#: partition -> the next command offset its actor expects (agents/cursor.py)
cursor = table(app, "cursor", **_common)

INDEX_TABLES = {"resource": resources, "day": resource_days}
ENTITY_TABLES = {"schedule": schedules, "slot": slots, "appointment": appointments, "waitlist": waitlist}
