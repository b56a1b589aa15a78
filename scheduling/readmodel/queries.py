"""The nine read use cases over the PostgreSQL read model.

Every query is scoped by tenant in SQL; lists use keyset pagination on the
same columns their index is ordered by, so a page is an index range scan.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import asyncpg

from domain.errors import DomainError, ErrorCode, validation_error
from domain.limits import bounded_utc, load_json, text_problem
from domain.model import ID_PATTERN, AvailabilityPattern, Period
from domain.pattern import PatternTooLarge, expand

MAX_LIMIT = 500
#: Before every start: the keyset position of a first page ordered by (start, id).
EPOCH = datetime.min.replace(tzinfo=UTC)
#: The longest range a preview expands: the expansion walks every day of it, with or without slots.
MAX_PREVIEW_DAYS = 731


@dataclass(frozen=True)
class Page:
    limit: int
    after: tuple[Any, ...] | None


def encode_cursor(values: tuple[Any, ...]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode()


def decode_cursor(cursor: str | None, *, timestamp_first: bool) -> tuple[Any, ...] | None:
    """The keyset position a cursor of `encode_cursor` carries: `(start, id)` or `(id,)`.

    Anything else (not base64, not JSON, wrong arity or types, a time without offset) is
    VALIDATION_FAILED naming `cursor`, never a database error.
    """
    if not cursor:
        return None
    try:
        values = load_json(base64.urlsafe_b64decode(cursor.encode()), "cursor")
        if not isinstance(values, list) or len(values) != (2 if timestamp_first else 1):
            raise ValueError
        if not all(isinstance(v, str) for v in values):
            raise ValueError
        if timestamp_first:
            start = datetime.fromisoformat(values[0])
            if start.tzinfo is None:
                raise ValueError
            values[0] = bounded_utc(start)
        return tuple(values)
    except (DomainError, ValueError, TypeError):
        raise validation_error([{"field": "cursor", "message": "not a cursor of this list"}]) from None


def _text(value: str | None, field: str) -> str | None:
    """A text filter PostgreSQL can compare: text values cannot hold NUL and other forbidden characters."""
    problem = text_problem(value) if value is not None else None
    if problem is not None:
        raise validation_error([{"field": field, "message": problem}])
    return value


def _utc(value: datetime, field: str) -> datetime:
    """A time PostgreSQL can take: its UTC form must be a representable datetime."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise validation_error([{"field": field, "message": "out of range"}]) from None


def _is_id(value: str) -> bool:
    """Ids minted by the service match ID_PATTERN; anything else cannot name an entity."""
    return ID_PATTERN.match(value) is not None


def _page(rows: list[asyncpg.Record], limit: int, key: tuple[str, ...]) -> dict[str, Any]:
    data = [r["data"] for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = encode_cursor(tuple(rows[limit - 1][k] for k in key)) if more else None
    return {"data": data, "nextCursor": next_cursor}


def _filtered_sql(table: str, extra: str, filters: list[str]) -> str:
    """A keyset page of `table` by (start_at, id) with equality filters: $1 is the tenant, then the filters."""
    n = 2 + len(filters)
    where = "".join(f" AND {column} = ${i}" for i, column in enumerate(filters, start=2))
    return f"""SELECT id, start_at, data FROM {table}
           WHERE tenant_id = $1{extra}{where}
             AND start_at >= ${n} AND start_at < ${n + 1} AND (start_at, id) > (${n + 2}, ${n + 3})
           ORDER BY start_at, id LIMIT ${n + 4}"""


#: statuses whose appointment no longer occupies the resource's time (domain RELEASING)
_RELEASED = "('cancelled', 'noshow', 'entered-in-error')"


@cache
def search_slots_sql(by_provider: bool, by_location: bool, by_service: bool = False) -> tuple[str, tuple[str, ...]]:
    """SearchAvailableSlots' statement for one combination of filters, and the names of its filter arguments.

    One statement per combination rather than `($2 IS NULL OR provider_id = $2)`: a prepared statement's generic
    plan cannot use an index on a column compared that way, and asyncpg prepares every statement.

    A slot is listed when it can be booked now: free (seats left), of an active schedule (its slots close in
    parts, so this holds before the last part), not started, and no other
    active appointment of its resource lies at its time or within its schedule's buffers (the booking would be
    a double booking). The last two arguments are the service-wide buffer defaults, for schedules that set none;
    an appointment lasts at most 24 hours, which bounds the look-back on the provider's appointments.
    """
    on = (("provider_id", by_provider), ("location_id", by_location), ("service_type", by_service))
    filters = [column for column, wanted in on if wanted]
    n = 2 + len(filters)
    where = "".join(f" AND s.{column} = ${i}" for i, column in enumerate(filters, start=2))
    policy = "sc.data->'bookingPolicy'"
    buffer = (f"make_interval(mins => GREATEST(COALESCE(({policy}->>'bufferBeforeMinutes')::int, ${n + 5}),"
              f" COALESCE(({policy}->>'bufferAfterMinutes')::int, ${n + 6})))")  # fmt: skip
    sql = f"""SELECT s.id, s.start_at, s.data FROM slots s JOIN schedules sc ON sc.id = s.schedule_id
           WHERE s.tenant_id = $1 AND s.status = 'free' AND s.start_at > now(){where}
             AND (sc.data->>'active')::boolean IS NOT FALSE
             AND s.start_at >= ${n} AND s.start_at < ${n + 1} AND (s.start_at, s.id) > (${n + 2}, ${n + 3})
             AND NOT EXISTS (
                 SELECT 1 FROM appointments a
                 WHERE a.tenant_id = s.tenant_id AND a.provider_id = s.provider_id
                   AND a.start_at < s.end_at + {buffer}
                   AND a.start_at > s.start_at - {buffer} - interval '24 hours'
                   AND a.end_at > s.start_at - {buffer}
                   AND a.status NOT IN {_RELEASED} AND a.data->>'slotId' <> s.id)
           ORDER BY s.start_at, s.id LIMIT ${n + 4}"""
    return sql, tuple(filters)


@cache
def calendar_sql(by_facility: bool, by_provider: bool) -> tuple[str, tuple[str, ...]]:
    """GetCalendarView's statement for one combination of filters (see `search_slots_sql`)."""
    filters = [c for c, on in (("location_id", by_facility), ("provider_id", by_provider)) if on]
    return _filtered_sql("appointments", "", filters), tuple(filters)


async def search_available_slots(
    pool: asyncpg.Pool, tenant: str, provider_id: str | None, location_id: str | None,
    start: datetime, end: datetime, page: Page, service_type: str | None = None, buffers: tuple[int, int] = (0, 0),
) -> dict[str, Any]:  # fmt: skip
    """`buffers`: the service-wide (before, after) buffer minutes, for schedules that set none."""
    provider_id, location_id = _text(provider_id, "providerId"), _text(location_id, "locationId")
    service_type = _text(service_type, "serviceType")
    start, end = _utc(start, "from"), _utc(end, "to")
    after_start, after_id = page.after if page.after else (start, "")
    sql, _ = search_slots_sql(provider_id is not None, location_id is not None, service_type is not None)
    filters = [v for v in (provider_id, location_id, service_type) if v is not None]
    rows = await pool.fetch(sql, tenant, *filters, start, end, after_start, after_id, page.limit + 1, *buffers)
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
    if not _is_id(appointment_id):
        raise DomainError(ErrorCode.APPOINTMENT_NOT_FOUND, f"appointment {appointment_id[:64]!r} not found")
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
    _text(patient_id, "patientId")
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
    facility_id, provider_id = _text(facility_id, "facilityId"), _text(provider_id, "providerId")
    start, end = _utc(start, "from"), _utc(end, "to")
    after_start, after_id = page.after or (start, "")
    sql, _ = calendar_sql(facility_id is not None, provider_id is not None)
    filters = [v for v in (facility_id, provider_id) if v is not None]
    rows = await pool.fetch(sql, tenant, *filters, start, end, after_start, after_id, page.limit + 1)
    return _page(rows, page.limit, ("start_at", "id"))


async def get_schedule(pool: asyncpg.Pool, tenant: str, schedule_id: str) -> dict[str, Any]:
    if not _is_id(schedule_id):
        raise DomainError(ErrorCode.SCHEDULE_NOT_FOUND, f"schedule {schedule_id[:64]!r} not found")
    row = await pool.fetchrow("SELECT data FROM schedules WHERE id = $1 AND tenant_id = $2", schedule_id, tenant)
    if row is None:
        raise DomainError(ErrorCode.SCHEDULE_NOT_FOUND, f"schedule {schedule_id} not found")
    data: dict[str, Any] = row["data"]
    return data


async def list_schedules(pool: asyncpg.Pool, tenant: str, actor_id: str | None, page: Page) -> dict[str, Any]:
    actor_id = _text(actor_id, "actorId")
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
    """Entries best first, as the waitlist offers them: highest priority, then oldest, then id.

    The HTTP layer hands over a one-value cursor; for this list that value is the keyset
    `priority|createdAt|id` (see `_waitlist_after`).
    """
    if patient_id is not None:
        patient_id = _text(str(patient_id), "patient_id")
    after = _waitlist_after(page.after)
    if after is None:
        rows = await pool.fetch(
            """SELECT id, priority, created_at, data FROM waitlist_entries
               WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR patient_id = $3)
               ORDER BY priority DESC, created_at, id LIMIT $4""",
            tenant, status, patient_id, page.limit + 1,
        )  # fmt: skip
    else:
        rows = await pool.fetch(
            """SELECT id, priority, created_at, data FROM waitlist_entries
               WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR patient_id = $3)
                 AND (priority < $4 OR (priority = $4 AND (created_at, id) > ($5, $6)))
               ORDER BY priority DESC, created_at, id LIMIT $7""",
            tenant, status, patient_id, *after, page.limit + 1,
        )  # fmt: skip
    data = [r["data"] for r in rows[: page.limit]]
    last = rows[page.limit - 1] if len(rows) > page.limit else None
    next_cursor = None
    if last is not None:
        next_cursor = encode_cursor((f"{last['priority']}|{last['created_at'].isoformat()}|{last['id']}",))
    return {"data": data, "nextCursor": next_cursor}


def _waitlist_after(after: tuple[Any, ...] | None) -> tuple[int, datetime, str] | None:
    if after is None:
        return None
    try:
        priority, created_at, entry_id = str(after[0]).split("|", 2)
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None or not -(2**31) <= int(priority) < 2**31:
            raise ValueError
        return int(priority), when.astimezone(UTC), entry_id
    except (ValueError, OverflowError):
        raise validation_error([{"field": "cursor", "message": "not a cursor of this list"}]) from None


def _preview_range(body: dict[str, Any]) -> Any:
    """The range to preview: `range {start, end}`, or `from`/`to` beside the pattern (as the list queries take)."""
    if "range" in body:
        return body["range"]
    if "from" in body or "to" in body:
        return {"start": body.get("from"), "end": body.get("to")}
    return None


def preview_pattern(body: Any) -> dict[str, Any]:
    """Expand a pattern over a range without storing anything."""
    from pydantic import ValidationError

    from domain.errors import pydantic_details

    if not isinstance(body, dict):
        raise validation_error([{"field": "body", "message": "a JSON object is required"}])
    details: list[dict[str, Any]] = []
    parsed: dict[str, Any] = {}
    for field, model, raw in (
        ("availabilityPattern", AvailabilityPattern, body.get("availabilityPattern", body.get("pattern"))),
        ("range", Period, _preview_range(body)),
    ):
        if raw is None:
            details.append({"field": field, "message": "required"})
            continue
        try:
            parsed[field] = model.model_validate(raw)
        except ValidationError as exc:
            details += [{**d, "field": f"{field}.{d['field']}" if d["field"] else field} for d in pydantic_details(exc)]
    if details:
        raise validation_error(details)
    pattern: AvailabilityPattern = parsed["availabilityPattern"]
    within: Period = parsed["range"]
    if within.end - within.start > timedelta(days=MAX_PREVIEW_DAYS):
        raise validation_error([{"field": "range", "message": f"at most {MAX_PREVIEW_DAYS} days"}])
    try:
        periods = expand(pattern, within)
    except PatternTooLarge as exc:
        raise validation_error([{"field": "range", "message": str(exc)}]) from None
    return {"data": [p.dump() for p in periods], "count": len(periods)}
