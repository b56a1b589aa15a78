"""The HTTP view: thin routes over the query functions, and the HTTP form of every command.

A command route sends the same NATS request a client would, so the three
ways of issuing a command share one meaning; the reply arrives after the
projector committed it, so a following query sees the effect.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from domain.errors import DomainError, ErrorCode, validation_error
from domain.limits import MAX_BODY_BYTES, bounded_utc, load_json
from domain.policy import authorize_query, require_own
from scheduling.core import metrics
from scheduling.core.auth import Verifier
from scheduling.core.catalog import CATALOG, PublicCommand
from scheduling.core.config import COMMAND_SUBJECT_PREFIX, Settings
from scheduling.core.failures import is_outage
from scheduling.core.wire import Claims
from scheduling.http import docs, ops
from scheduling.http.openapi import document
from scheduling.readmodel import queries
from scheduling.streams.lag import LagProbe

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

POOL = web.AppKey("pool", asyncpg.Pool)
NC = web.AppKey("nats", NATS)
VERIFIER = web.AppKey("verifier", Verifier)
SETTINGS = web.AppKey("settings", Settings)
ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]
READY: web.AppKey[ReadyCheck] = web.AppKey("ready")
LAG = web.AppKey("lag", LagProbe)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json", headers=headers or {})


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    try:
        response = await handler(request)
    except DomainError as error:
        response = _json(error.as_reply(), error.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # unknown route or method, oversized body: the request itself is malformed (status 404, 405, 413)
        error_body = {"code": ErrorCode.VALIDATION_FAILED.value, "status": exc.status, "message": exc.reason}
        response = _json({"ok": False, "error": error_body}, exc.status)
    except Exception as exc:
        if is_outage(exc):
            # PostgreSQL away: the read model is unavailable, the request itself was fine
            log.warning("%s %s: read model unavailable: %r", request.method, request.path, exc)
            response = _json(DomainError(ErrorCode.UNAVAILABLE, "the read model is unavailable").as_reply(), 503)
            metrics.HTTP_REQUESTS.labels(route, "503").inc()
            return response
        log.exception("unexpected error on %s %s", request.method, request.path)
        response = _json(DomainError(ErrorCode.INTERNAL, "internal error").as_reply(), 500)
    metrics.HTTP_REQUESTS.labels(route, str(response.status)).inc()
    return response


def _claims(request: web.Request) -> Claims:
    """The caller's verified token (UNAUTHENTICATED otherwise); what it may do is the policy's."""
    return request.app[VERIFIER].claims(request.headers.get("Authorization"))


def _reader(request: web.Request, query: str) -> Claims:
    """The caller of query `query`, allowed by the access policy (domain/policy.py)."""
    claims = _claims(request)
    authorize_query(claims.access, query)
    return claims


def _time(request: web.Request, name: str, *, required: bool = True) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        if required:
            raise validation_error([{"field": name, "message": "required (RFC 3339 with offset)"}])
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise validation_error([{"field": name, "message": "not an RFC 3339 time"}]) from None
    if value.tzinfo is None:
        raise validation_error([{"field": name, "message": "an offset is required"}])
    try:
        return bounded_utc(value)
    except ValueError as exc:
        raise validation_error([{"field": name, "message": str(exc)}]) from None


def _range(request: web.Request) -> tuple[datetime, datetime]:
    start, end = _time(request, "from"), _time(request, "to")
    assert start is not None and end is not None
    if end <= start:
        raise validation_error([{"field": "to", "message": "must be after from"}])
    return start, end


def _page(request: web.Request, *, timestamp_first: bool) -> queries.Page:
    raw = request.query.get("limit", "50")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= queries.MAX_LIMIT:
        raise validation_error([{"field": "limit", "message": f"an integer from 1 to {queries.MAX_LIMIT}"}])
    cursor = queries.decode_cursor(request.query.get("cursor"), timestamp_first=timestamp_first)
    return queries.Page(limit=int(raw), after=cursor)


def _status_filter(request: web.Request, allowed: set[str]) -> str | None:
    status = request.query.get("status")
    if status is not None and status not in allowed:
        raise validation_error([{"field": "status", "message": f"one of {sorted(allowed)}"}])
    return status


SLOT_STATUSES = {"free", "busy", "busy-unavailable", "busy-tentative", "entered-in-error"}
APPOINTMENT_STATUSES = {
    "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "entered-in-error",
    "checked-in", "waitlist",
}  # fmt: skip
WAITLIST_STATUSES = {"waiting", "offered", "fulfilled", "cancelled"}


# --- queries -------------------------------------------------------------------------------------


def _default_buffers(request: web.Request) -> tuple[int, int]:
    """The service-wide buffer minutes (before, after), for the schedules that set none."""
    policy = request.app[SETTINGS].booking_policy
    return policy.buffer_before_minutes or 0, policy.buffer_after_minutes or 0


async def search_slots(request: web.Request) -> web.Response:
    claims = _reader(request, "search_slots")
    start, end = _range(request)
    page = _page(request, timestamp_first=True)
    q = request.query
    return _json(
        await queries.search_available_slots(
            request.app[POOL],
            claims.tenant,
            q.get("providerId"),
            q.get("locationId"),
            start,
            end,
            page,
            q.get("serviceType"),
            _default_buffers(request),
        )
    )


async def schedule_slots(request: web.Request) -> web.Response:
    claims = _reader(request, "schedule_slots")
    status = _status_filter(request, SLOT_STATUSES)
    page = _page(request, timestamp_first=True)
    return _json(
        await queries.slots_by_schedule(request.app[POOL], claims.tenant, request.match_info["id"], status, page)
    )


async def get_appointment(request: web.Request) -> web.Response:
    claims = _reader(request, "get_appointment")
    data = await queries.get_appointment(request.app[POOL], claims.tenant, request.match_info["id"])
    if claims.patient_id is not None and data["patientId"] != claims.patient_id:
        raise DomainError(ErrorCode.APPOINTMENT_NOT_FOUND, f"appointment {request.match_info['id']} not found")
    return _json({"ok": True, "data": data}, headers={"ETag": f'"{data["version"]}"'})


async def patient_appointments(request: web.Request) -> web.Response:
    claims = _reader(request, "patient_appointments")
    patient_id = request.match_info["patientId"]
    require_own(claims.access, patient_id)
    status = _status_filter(request, APPOINTMENT_STATUSES)
    page = _page(request, timestamp_first=True)
    return _json(await queries.patient_appointments(request.app[POOL], claims.tenant, patient_id, status, page))


async def calendar(request: web.Request) -> web.Response:
    claims = _reader(request, "calendar")
    start, end = _range(request)
    page = _page(request, timestamp_first=True)
    q = request.query
    return _json(
        await queries.calendar(
            request.app[POOL], claims.tenant, q.get("facilityId"), q.get("providerId"), start, end, page
        )
    )


async def get_schedule(request: web.Request) -> web.Response:
    claims = _reader(request, "get_schedule")
    data = await queries.get_schedule(request.app[POOL], claims.tenant, request.match_info["id"])
    return _json({"ok": True, "data": data}, headers={"ETag": f'"{data["version"]}"'})


async def list_schedules(request: web.Request) -> web.Response:
    claims = _reader(request, "list_schedules")
    page = _page(request, timestamp_first=False)
    return _json(await queries.list_schedules(request.app[POOL], claims.tenant, request.query.get("actorId"), page))


async def get_waitlist(request: web.Request) -> web.Response:
    claims = _reader(request, "get_waitlist")
    status = _status_filter(request, WAITLIST_STATUSES)
    page = _page(request, timestamp_first=False)
    own = claims.patient_id
    return _json(await queries.waitlist(request.app[POOL], claims.tenant, status, own, page))


async def preview(request: web.Request) -> web.Response:
    _reader(request, "preview")
    return _json({"ok": True, **queries.preview_pattern(await _body(request))})


# --- commands ------------------------------------------------------------------------------------


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is an empty object), within the input limits."""
    raw = await request.read()
    body = load_json(raw) if raw else {}
    if not isinstance(body, dict):
        raise validation_error([{"field": "body", "message": "a JSON object is required"}])
    return body


def command_route(entry: PublicCommand) -> Handler:
    """The HTTP form of a public command: the body, the id from the path, `If-Match` as `expectedVersion`."""

    async def handle(request: web.Request) -> web.Response:
        _claims(request)
        body = await _body(request)
        for name, value in request.match_info.items():
            body[entry.path_field if name == "id" and entry.path_field else name] = value
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            try:
                body["expectedVersion"] = int(if_match.strip().removeprefix("W/").strip('"'))
            except ValueError:
                raise validation_error([{"field": "If-Match", "message": "must be an entity version"}]) from None
        return await _send(request, entry.name, body, entry.created)

    return handle


async def self_book(request: web.Request) -> web.Response:
    claims = _claims(request)
    patient_id = claims.patient_id
    if not patient_id:
        raise DomainError(ErrorCode.PATIENT_ID_CLAIM_REQUIRED, "self-booking needs a patient token (patient_id claim)")
    body = await _body(request)
    body["patientId"] = patient_id
    body.pop("allowDoubleBooking", None)
    return await _send(request, "appointment.book", body, True)


async def _send(request: web.Request, name: str, body: dict[str, Any], created: bool) -> web.Response:
    headers = {"Authorization": request.headers.get("Authorization", "")}
    key = request.headers.get("Idempotency-Key")
    if key:
        headers["Nats-Msg-Id"] = key
    settings = request.app[SETTINGS]
    try:
        msg = await request.app[NC].request(
            COMMAND_SUBJECT_PREFIX + name, json.dumps(body).encode(), timeout=settings.command_timeout, headers=headers
        )
    except NatsError:  # timed out, no bridge listening, NATS away
        raise DomainError(
            ErrorCode.UNAVAILABLE,
            "the command was not answered in time; repeat it with the same Idempotency-Key to learn its outcome",
        ) from None
    reply = json.loads(msg.data)
    if reply.get("ok"):
        data = reply.get("data") or {}
        extra = {"ETag": f'"{data["version"]}"'} if isinstance(data, dict) and "version" in data else {}
        return _json(reply, 201 if created else 200, extra)
    return _json(reply, int(reply["error"]["status"]))


# --- operations ----------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return _json({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    """Ready when every dependency answers and no partition has lag without progress (scheduling/streams/lag.py)."""
    checks = await request.app[READY]()
    lag = request.app[LAG]
    await lag.update()
    stalled = lag.stalled()
    checks["progress"] = not stalled
    ok = all(checks.values())
    return _json({"ok": ok, "checks": checks, "stalled": stalled}, 200 if ok else 503)


async def metrics_route(request: web.Request) -> web.Response:
    await request.app[LAG].update()
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return _json(document())


def build(
    settings: Settings,
    pool: asyncpg.Pool,
    nc: NATS,
    ready: Callable[[], Awaitable[dict[str, bool]]],
) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY_BYTES)
    app[POOL], app[NC], app[SETTINGS], app[READY] = pool, nc, settings, ready
    app[VERIFIER] = Verifier(settings)
    app[LAG] = LagProbe(settings)
    r = app.router
    r.add_get("/slots", search_slots)
    r.add_get("/schedules/{id}/slots", schedule_slots)
    r.add_get("/appointments/{id}", get_appointment)
    r.add_get("/patients/{patientId}/appointments", patient_appointments)
    r.add_get("/calendar", calendar)
    r.add_get("/schedules/{id}", get_schedule)
    r.add_get("/schedules", list_schedules)
    r.add_get("/waitlist", get_waitlist)
    r.add_post("/availability/preview", preview)
    r.add_post("/appointments/self-book", self_book)
    for entry in CATALOG:
        r.add_route(entry.method, entry.path, command_route(entry))
    r.add_get("/openapi.json", openapi)
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics_route)
    r.add_get("/ops/partitions", ops.partitions_route(settings, nc, app[VERIFIER]))
    docs.add_routes(r)
    return app
