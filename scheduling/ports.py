"""Adapters of the ports the worker's actors use besides the tables: ReminderDispatchPort, PatientCachePort.

They are created once at worker start (`connect`) and shared by the agents.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from domain.model import Appointment
from scheduling.config import REMINDER_SUBJECT

log = logging.getLogger(__name__)


class PatientCache:
    """Read-through cache of patient demographics, kept in PostgreSQL from registration events."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 300.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}

    async def get(self, tenant: str, patient_id: str) -> dict[str, Any] | None:
        key = (tenant, patient_id)
        cached = self._entries.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        row = await self._pool.fetchrow(
            "SELECT data FROM patients WHERE tenant_id = $1 AND patient_id = $2", tenant, patient_id
        )
        data: dict[str, Any] | None = row["data"] if row is not None else None
        self._entries[key] = (time.monotonic() + self._ttl, data)
        return data


class ReminderDispatch:
    """Hands a reminder to the notification service; it counts as sent only once JetStream acknowledged it."""

    BACKOFF = (0.2, 0.5, 1.0)

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def request(self, appointment: Appointment, lead_minutes: int, patient: dict[str, Any] | None) -> bool:
        payload = {
            "appointmentId": appointment.id,
            "tenantId": appointment.tenant_id,
            "patientId": appointment.patient_id,
            "patient": patient,
            "start": appointment.start.isoformat(),
            "providerId": appointment.provider_id,
            "locationId": appointment.location_id,
            "leadMinutes": lead_minutes,
        }
        headers = {"Nats-Msg-Id": f"reminder-{appointment.id}-{lead_minutes}", "Content-Type": "application/json"}
        for attempt, pause in enumerate((0.0, *self.BACKOFF)):
            if pause:
                await asyncio.sleep(pause)  # backoff between attempts, not synchronisation
            try:
                await self._js.publish(REMINDER_SUBJECT, json.dumps(payload).encode(), headers=headers, timeout=2)
                return True
            except Exception as exc:
                log.warning("reminder hand-off for %s (attempt %d) failed: %r", appointment.id, attempt + 1, exc)
        return False


@dataclass
class Ports:
    nc: NATS
    pool: asyncpg.Pool
    patients: PatientCache
    reminders: ReminderDispatch


_ports: Ports | None = None
_ready = asyncio.Event()


async def connect(nats_url: str, database_url: str) -> Ports:
    import nats

    from scheduling import db

    global _ports
    await db.migrate(database_url)
    pool = await db.pool(database_url)
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1)
    _ports = Ports(nc=nc, pool=pool, patients=PatientCache(pool), reminders=ReminderDispatch(nc.jetstream()))
    _ready.set()
    return _ports


async def ready(within: float = 30.0) -> Ports:
    await asyncio.wait_for(_ready.wait(), within)
    assert _ports is not None
    return _ports
