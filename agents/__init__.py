"""Faust agents: small, one concern each, registered on a worker's app by `register` (nothing at import)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agents import timers
from agents.commands import ResourceActor
from agents.cursor import Cursor
from agents.reminders import ReminderPorts, Reminders
from scheduling.streams.app import Streams
from tables import Tables


def register(streams: Streams, tables: Tables, ports: Callable[[], Awaitable[ReminderPorts]]) -> ResourceActor:
    """The resource actor (one serial consumer of the commands topic) and the leader's timers."""
    settings = streams.settings
    actor = ResourceActor(
        settings,
        tables,
        streams.send,
        Cursor(tables.cursor, settings.kafka_bootstrap),
        Reminders(tables.schedules, settings.partitions, settings.booking_policy, ports),
    )
    # one actor per partition: partitions decide and persist independently (DESIGN decision 8)
    streams.app.agent(streams.commands, name="scheduling.resource_actor", concurrency=1, isolated_partitions=True)(
        actor.consume
    )
    timers.register(streams)
    return actor
