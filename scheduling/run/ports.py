"""The worker's adapters (cosmicpython's bootstrap): connected once the worker runs, awaited by the actors.

The HTTP view and the reminder dispatch need PostgreSQL and NATS; the worker connects them in a
Faust task after start-up, and the actors await `ready()` before their first reminder hand-off.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import nats
from nats.aio.client import Client as NATS

from agents.reminders import ReminderPorts
from bridge.notifications import ReminderDispatch
from scheduling.readmodel import db
from scheduling.readmodel.patients import PatientCache


@dataclass(frozen=True)
class Connected:
    nc: NATS
    pool: asyncpg.Pool
    reminder_ports: ReminderPorts


class Adapters:
    def __init__(self) -> None:
        self._connected: asyncio.Future[Connected] | None = None

    async def connect(self, nats_url: str, database_url: str) -> Connected:
        await db.migrate(database_url)
        pool = await db.pool(database_url)
        nc = await nats.connect(nats_url, max_reconnect_attempts=-1)
        ports = ReminderPorts(patients=PatientCache(pool), reminders=ReminderDispatch(nc.jetstream()))
        connected = Connected(nc=nc, pool=pool, reminder_ports=ports)
        self._future().set_result(connected)
        return connected

    async def reminder_ports(self, within: float = 30.0) -> ReminderPorts:
        return (await asyncio.wait_for(asyncio.shield(self._future()), within)).reminder_ports

    def _future(self) -> asyncio.Future[Connected]:
        if self._connected is None:
            self._connected = asyncio.get_running_loop().create_future()
        return self._connected
