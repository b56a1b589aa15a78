"""PatientCachePort over PostgreSQL: demographics the projector keeps from registration events."""

from __future__ import annotations

import time
from typing import Any

import asyncpg


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
