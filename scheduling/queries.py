"""The nine read use cases over the PostgreSQL read model.

Every query is scoped by tenant in SQL; lists use keyset pagination on the
same columns their index is ordered by, so a page is an index range scan.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from domain.errors import DomainError, ErrorCode, validation_error
from domain.model import AvailabilityPattern, Period
from domain.pattern import PatternTooLarge, expand

MAX_LIMIT = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    limit: int
    after: tuple[Any, ...] | None


def encode_cursor(values: tuple[Any, ...]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode()


def decode_cursor(cursor: str | None, *, timestamp_first: bool) -> tuple[Any, ...] | None:
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(values, list) or not values:
            raise ValueError
        if timestamp_first:
            values[0] = datetime.fromisoformat(values[0])
        return tuple(values)
    except (ValueError, TypeError):
        raise validation_error([{"field": "cursor", "message": "not a cursor of this list"}]) from None


def _page(rows: list[asyncpg.Record], limit: int, key: tuple[str, ...]) -> dict[str, Any]:
    data = [r["data"] for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = encode_cursor(tuple(rows[limit - 1][k] for k in key)) if more else None
    return {"data": data, "nextCursor": next_cursor}


async def search_available_slots(
    pool: asyncpg.Pool, tenant: str, provider_id: str | None, location_id: str | None,
    start: datetime, end: datetime, page: Page,
) -> dict[str, Any]:  # fmt: skip
    after_start, after_id = page.after if page.after else (start, "")
    rows = await pool.fetch(
        """SELECT id, start_at, data FROM slots
           WHERE tenant_id = $1 AND status = 'free'
             AND ($2::text IS NULL OR provider_id = $2) AND ($3::text IS NULL OR location_id = $3)
             AND start_at >= $4 AND start_at < $5 AND (start_at, id) > ($6, $7)
           ORDER BY start_at, id LIMIT $8""",
        tenant, provider_id, location_id, start, end, after_start, after_id if page.after else "", page.limit + 1,
    )  # fmt: skip
    return _page(rows, page.limit, ("start_at", "id"))


async def slots_by_schedule(
    pool: asyncpg.Pool, tenant: str, schedule_id: str, status: str | None, page: Page
) -> dict[str, Any]:
    await get_schedule(pool, tenant, schedule_id)
    after = page.after or (EPOCH, "")
    rows = await pool.fetch(
        """SELECT id, start_at, data FROM slots
           WHERE schedule_id = $1 AND tenant_id = $2 AND ($3::text IS NULL OR status = $3)
             AND (start_at, id) > ($4, $5)
           ORDER BY start_at, id LIMIT $6""",
        schedule_id, tenant, status, after[0], after[1], page.limit + 1,
    )  # fmt: skip
    return _page(rows, page.limit, ("start_at", "id"))


async def get_appointment(pool: asyncpg.Pool, tenant: str, appointment_id: str) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT data FROM appointments WHERE id = $1 AND tenant_id = $2", appointment_id, tenant)
    if row is None:
        raise DomainError(ErrorCode.APPOINTMENT_NOT_FOUND, f"appointment {appointment_id} not found")
    data: dict[str, Any] = row["data"]
    patient = await pool.fetchrow(
        "SELECT data FROM patients WHERE tenant_id = $1 AND patient_id = $2", tenant, data["patientId"]
    )
    if patient is not None:
        data = {**data, "patient": patient["data"]}
    return data


async def patient_appointments(
    pool: asyncpg.Pool, tenant: str, patient_id: str, status: str | None, page: Page
) -> dict[str, Any]:
    after = page.after or (EPOCH, "")
    rows = await pool.fetch(
        """SELECT id, start_at, data FROM appointments
           WHERE tenant_id = $1 AND patient_id = $2 AND ($3::text IS NULL OR status = $3)
             AND (start_at, id) > ($4, $5)
           ORDER BY start_at, id LIMIT $6""",
        tenant, patient_id, status, after[0], after[1], page.limit + 1,
    )  # fmt: skip
    return _page(rows, page.limit, ("start_at", "id"))


async def calendar(
    pool: asyncpg.Pool, tenant: str, facility_id: str | None, provider_id: str | None,
    start: datetime, end: datetime, page: Page,
) -> dict[str, Any]:  # fmt: skip
    after = page.after or (start, "")
    rows = await pool.fetch(
        """SELECT id, start_at, data FROM appointments
           WHERE tenant_id = $1 AND ($2::text IS NULL OR location_id = $2) AND ($3::text IS NULL OR provider_id = $3)
             AND start_at >= $4 AND start_at < $5 AND (start_at, id) > ($6, $7)
           ORDER BY start_at, id LIMIT $8""",
        tenant, facility_id, provider_id, start, end, after[0], after[1], page.limit + 1,
    )  # fmt: skip
    return _page(rows, page.limit, ("start_at", "id"))


async def get_schedule(pool: asyncpg.Pool, tenant: str, schedule_id: str) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT data FROM schedules WHERE id = $1 AND tenant_id = $2", schedule_id, tenant)
    if row is None:
        raise DomainError(ErrorCode.SCHEDULE_NOT_FOUND, f"schedule {schedule_id} not found")
    data: dict[str, Any] = row["data"]
    return data


async def list_schedules(pool: asyncpg.Pool, tenant: str, actor_id: str | None, page: Page) -> dict[str, Any]:
    after = page.after or ("",)
    rows = await pool.fetch(
        """SELECT id, data FROM schedules
           WHERE tenant_id = $1 AND ($2::text IS NULL OR actor_reference = $2) AND id > $3
           ORDER BY id LIMIT $4""",
        tenant, actor_id, after[0], page.limit + 1,
    )  # fmt: skip
    return _page(rows, page.limit, ("id",))


async def waitlist(
    pool: asyncpg.Pool, tenant: str, status: str | None, patient_id: str | None, page: Page
) -> dict[str, Any]:
    after = page.after or ("",)
    rows = await pool.fetch(
        """SELECT id, data FROM waitlist_entries
           WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR patient_id = $3)
             AND id > $4
           ORDER BY id LIMIT $5""",
        tenant, status, patient_id, after[0], page.limit + 1,
    )  # fmt: skip
    return _page(rows, page.limit, ("id",))


def preview_pattern(body: Any) -> dict[str, Any]:
    """Expand a pattern over a range without storing anything."""
    from pydantic import ValidationError

    from domain.errors import pydantic_details

    if not isinstance(body, dict):
        raise validation_error([{"field": "body", "message": "a JSON object is required"}])
    try:
        pattern = AvailabilityPattern.model_validate(body.get("availabilityPattern", body.get("pattern")))
        within = Period.model_validate(body.get("range"))
    except ValidationError as exc:
        raise validation_error(pydantic_details(exc)) from None
    try:
        periods = expand(pattern, within)
    except PatternTooLarge as exc:
        raise validation_error([{"field": "range", "message": str(exc)}]) from None
    return {"data": [p.dump() for p in periods], "count": len(periods)}
