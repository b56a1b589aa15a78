"""Projector: decision records -> PostgreSQL read model and audit log, then the caller's reply.

An entity row is written only if the record's version is newer than the
stored one, so replaying the whole topic yields the same rows. The reply to a
NATS request is published after the transaction commits: a query made after
a successful reply sees that command's effect (read-your-writes).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from domain.errors import DomainError
from scheduling.auth import Verifier
from scheduling.kafka import Batch
from scheduling.records import decode, encode

log = logging.getLogger(__name__)

_UPSERTS: dict[str, str] = {
    "schedule": """
        INSERT INTO schedules AS t (id, tenant_id, actor_reference, location_id, version, data)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET actor_reference = EXCLUDED.actor_reference,
            location_id = EXCLUDED.location_id, version = EXCLUDED.version, data = EXCLUDED.data
        WHERE t.version < EXCLUDED.version""",
    "slot": """
        INSERT INTO slots AS t (id, tenant_id, schedule_id, provider_id, location_id, status, start_at, end_at,
                                version, data)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, start_at = EXCLUDED.start_at,
            end_at = EXCLUDED.end_at, version = EXCLUDED.version, data = EXCLUDED.data
        WHERE t.version < EXCLUDED.version""",
    "appointment": """
        INSERT INTO appointments AS t (id, tenant_id, patient_id, provider_id, location_id, status, start_at, end_at,
                                       version, data)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, start_at = EXCLUDED.start_at,
            end_at = EXCLUDED.end_at, provider_id = EXCLUDED.provider_id, location_id = EXCLUDED.location_id,
            version = EXCLUDED.version, data = EXCLUDED.data
        WHERE t.version < EXCLUDED.version""",
    "waitlist": """
        INSERT INTO waitlist_entries AS t (id, tenant_id, patient_id, status, priority, created_at, version, data)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, priority = EXCLUDED.priority,
            version = EXCLUDED.version, data = EXCLUDED.data
        WHERE t.version < EXCLUDED.version""",
}

_AUDIT = """
    INSERT INTO audit_log (delivery_id, command_id, tenant_id, caller, command_type, outcome, replay_of, decided_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (delivery_id) DO NOTHING"""


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _row(kind: str, d: dict[str, Any]) -> tuple[Any, ...]:
    if kind == "schedule":
        return (d["id"], d["tenantId"], d["actor"]["reference"], d["locationId"], d["version"], d)
    if kind == "slot":
        return (
            d["id"], d["tenantId"], d["scheduleId"], d.get("providerId"), d.get("locationId"), d["status"],
            _ts(d["start"]), _ts(d["end"]), d["version"], d,
        )  # fmt: skip
    if kind == "appointment":
        return (
            d["id"], d["tenantId"], d["patientId"], d.get("providerId"), d.get("locationId"), d["status"],
            _ts(d["start"]), _ts(d["end"]), d["version"], d,
        )  # fmt: skip
    return (
        d["id"], d["tenantId"], d["patientId"], d["status"], d["priority"], _ts(d["createdAt"]), d["version"], d,
    )  # fmt: skip


class Projector:
    def __init__(self, pool: asyncpg.Pool, nc: NATS | None, verifier: Verifier) -> None:
        self._pool = pool
        self._nc = nc
        self._verifier = verifier

    async def handle_batch(self, messages: Batch) -> None:
        records = []
        for message in messages:
            try:
                records.append(decode(message.value or b""))
            except ValueError:
                log.error("undecodable decision record at offset %s; skipped", message.offset)
        async with self._pool.acquire() as conn, conn.transaction():
            for record in records:
                await self.project(conn, record)
        for record in records:
            await self._reply(record)

    async def project(self, conn: asyncpg.Connection, record: dict[str, Any]) -> None:
        for change in record.get("changes", []):
            await conn.execute(_UPSERTS[change["kind"]], *_row(change["kind"], change["data"]))
        await conn.execute(
            _AUDIT,
            record["deliveryId"],
            record["commandId"],
            record.get("tenant") or "",
            record.get("caller"),
            record.get("type") or "unknown",
            record.get("outcome") or "unknown",
            record.get("replayOf"),
            _ts(record["decidedAt"]),
        )

    async def on_registration(self, msg: Msg) -> None:
        """PatientCachePort's writer: registration events upsert the patient's demographics."""
        try:
            tenant = self._verifier.claims((msg.headers or {}).get("Authorization"))["tenant"]
            patient = json.loads(msg.data)
            if not isinstance(patient, dict) or not isinstance(patient.get("patientId"), str):
                raise ValueError("patientId is required")
        except (DomainError, ValueError) as exc:
            log.warning("registration event on %s ignored: %s", msg.subject, exc)
            return
        await self._pool.execute(
            """INSERT INTO patients (tenant_id, patient_id, updated_at, data) VALUES ($1, $2, now(), $3)
               ON CONFLICT (tenant_id, patient_id) DO UPDATE SET updated_at = now(), data = EXCLUDED.data""",
            tenant,
            patient["patientId"],
            {k: patient[k] for k in ("patientId", "name", "birthDate", "telecom") if k in patient},
        )

    async def _reply(self, record: dict[str, Any]) -> None:
        reply_to = record.get("replyTo")
        if reply_to and self._nc is not None:
            await self._nc.publish(reply_to, encode(record["reply"]), headers={"Content-Type": "application/json"})
