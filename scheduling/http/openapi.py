"""OpenAPI 3.1 document of the HTTP view, with schemas generated from the pydantic models."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pydantic import BaseModel

from domain import commands as c
from domain.errors import HTTP_STATUS, ErrorCode
from domain.model import Appointment, AvailabilityPattern, Period, Schedule, Slot, WaitlistEntry
from scheduling.core.catalog import BY_NAME, CATALOG, PublicCommand

_MODELS: list[type[BaseModel]] = [
    Appointment, Schedule, Slot, WaitlistEntry, AvailabilityPattern, Period, *(entry.command for entry in CATALOG),
]  # fmt: skip

_ERROR = {
    "type": "object",
    "required": ["ok", "error"],
    "properties": {
        "ok": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "status", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "enum": [code.value for code in ErrorCode],
                    "description": "; ".join(f"{code.value}: {HTTP_STATUS[code]}" for code in ErrorCode),
                },
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "details": {},
            },
        },
    },
}


#: A wall-clock time of day, as pydantic writes and reads `datetime.time`: JSON Schema's `format: time`
#: is RFC 3339's full-time, which requires an offset that a pattern's local times do not carry.
_LOCAL_TIME = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "description": "local time of day (HH:MM[:SS[.ffffff]]) in the pattern's timezone",
}


def _local_times(node: Any) -> Any:
    """Replace every `format: time` string schema by `_LOCAL_TIME`."""
    if isinstance(node, dict):
        if node.get("format") == "time" and node.get("type") == "string":
            return {**{k: v for k, v in node.items() if k != "format"}, **_LOCAL_TIME}
        return {k: _local_times(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_local_times(v) for v in node]
    return node


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["ok", "data"], "properties": {"ok": {"const": True}, "data": schema}}


def _list(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "nextCursor"],
        "properties": {"data": {"type": "array", "items": schema}, "nextCursor": {"type": ["string", "null"]}},
    }


def _responses(ok_status: str, schema: dict[str, Any], errors: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {ok_status: {"description": "success", "content": {"application/json": {"schema": schema}}}}
    for status in errors:
        out[status] = {"description": "error", "content": {"application/json": {"schema": _ref("Error")}}}
    return out


def _param(
    name: str, where: str = "query", required: bool = False, fmt: str | None = None, description: str | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if fmt:
        schema["format"] = fmt
    param = {"name": name, "in": where, "required": required or where == "path", "schema": schema}
    if description:
        param["description"] = description
    return param


def _status(values: list[str]) -> dict[str, Any]:
    return {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": values}}


def _extended(schemas: dict[str, Any], base: str, extra: dict[str, Any]) -> dict[str, Any]:
    """A copy of component `base` with more properties: the generated schemas forbid unknown ones."""
    schema = dict(schemas[base])
    schema["properties"] = {**schema["properties"], **extra}
    schema.pop("title", None)
    return schema


PAGING = [
    {
        "name": "limit",
        "in": "query",
        "description": "page size (default 50)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
    },
    _param("cursor", description="`nextCursor` of the previous page"),
]
QUERY_ERRORS = ("400", "401", "403", "404")
COMMAND_ERRORS = ("400", "401", "403", "404", "409", "503")


def _command(entry: PublicCommand) -> dict[str, Any]:
    """The POST operation of a public command, from its catalog entry."""
    op: dict[str, Any] = {
        "operationId": entry.name,
        "description": f"NATS: `{entry.subject}`",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(entry.command.__name__)}}},
        "parameters": [_param("Idempotency-Key", "header"), _param("If-Match", "header")],
        "responses": _responses("201" if entry.created else "200", _ok(_ref(entry.reply)), COMMAND_ERRORS),
    }
    op["parameters"] += [_param(name, "path") for name in re.findall(r"\{(\w+)\}", entry.path)]
    return op


@cache
def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": _ERROR}
    for model in _MODELS:
        schema = model.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}", mode="serialization"
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas = _local_times(schemas)
    # GET /appointments/{id} adds the patient's demographics from the patient cache when it has them
    schemas["AppointmentView"] = _extended(schemas, "Appointment", {"patient": {"type": "object"}})
    schemas["ScheduleCreated"] = _extended(schemas, "Schedule", {"slotCount": {"type": "integer", "minimum": 0}})
    schemas["ScheduleWithConflicts"] = _extended(
        schemas, "Schedule", {"conflicts": {"type": "array", "items": _ref("Appointment")}}
    )
    schemas["DispatchSummary"] = {
        "type": "object",
        "properties": {"partitions": {"type": "integer", "minimum": 0}, "now": {"type": ["string", "null"]}},
    }
    slot_statuses = schemas["SlotStatus"]["enum"]
    appointment_statuses = schemas["AppointmentStatus"]["enum"]
    waitlist_statuses = schemas["WaitlistStatus"]["enum"]
    window = [
        _param("from", required=True, fmt="date-time", description="inclusive lower bound of the start (RFC 3339)"),
        _param("to", required=True, fmt="date-time", description="exclusive upper bound of the start, after `from`"),
    ]
    paths: dict[str, Any] = {
        "/slots": {
            "get": {
                "parameters": [
                    _param("providerId", description="the schedule's actor reference"),
                    _param("locationId"),
                    _param("serviceType", description="the schedule's service type"),
                    *window,
                    *PAGING,
                ],
                "responses": _responses("200", _list(_ref("Slot")), QUERY_ERRORS),
            }
        },
        "/schedules/{id}/slots": {
            "get": {
                "parameters": [_param("id", "path"), _status(slot_statuses), *PAGING],
                "responses": _responses("200", _list(_ref("Slot")), QUERY_ERRORS),
            },
        },
        "/appointments/{id}": {
            "get": {
                "parameters": [_param("id", "path")],
                "responses": _responses("200", _ok(_ref("AppointmentView")), QUERY_ERRORS),
            }
        },
        "/patients/{patientId}/appointments": {
            "get": {
                "parameters": [_param("patientId", "path"), _status(appointment_statuses), *PAGING],
                "responses": _responses("200", _list(_ref("Appointment")), QUERY_ERRORS),
            }
        },
        "/calendar": {
            "get": {
                "parameters": [
                    _param("facilityId", description="the appointments' location"),
                    _param("providerId", description="the booked resource's actor reference"),
                    *window,
                    *PAGING,
                ],
                "responses": _responses("200", _list(_ref("Appointment")), QUERY_ERRORS),
            }
        },
        "/schedules/{id}": {
            "get": {
                "parameters": [_param("id", "path")],
                "responses": _responses("200", _ok(_ref("Schedule")), QUERY_ERRORS),
            }
        },
        "/schedules": {
            "get": {
                "parameters": [_param("actorId"), *PAGING],
                "responses": _responses("200", _list(_ref("Schedule")), QUERY_ERRORS),
            },
        },
        "/waitlist": {
            "get": {
                "description": "best first: highest priority, then oldest; a patient token sees its own entries",
                "parameters": [_status(waitlist_statuses), *PAGING],
                "responses": _responses("200", _list(_ref("WaitlistEntry")), QUERY_ERRORS),
            },
        },
        "/availability/preview": {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["availabilityPattern", "range"],
                                "properties": {
                                    "availabilityPattern": _ref("AvailabilityPattern"),
                                    "range": _ref("Period"),
                                },
                            }
                        }
                    },
                },
                "responses": _responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["ok", "data", "count"],
                        "properties": {
                            "ok": {"const": True},
                            "data": {"type": "array", "items": _ref("Period")},
                            "count": {"type": "integer", "minimum": 0},
                        },
                    },
                    ("400", "401", "403"),
                ),
            }
        },
        "/healthz": {"get": {"security": [], "responses": {"200": {"description": "alive"}}}},
        "/readyz": {
            "get": {"security": [], "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}
        },
        "/metrics": {"get": {"security": [], "responses": {"200": {"description": "Prometheus text"}}}},
        "/openapi.json": {"get": {"security": [], "responses": {"200": {"description": "this document"}}}},
        "/docs": {
            "get": {
                "security": [],
                "responses": {"200": {"description": "this document as a page", "content": {"text/html": {}}}},
            }
        },
        "/ops/partitions": {
            "get": {
                "description": "admin: consumer groups, partition owners, lag, busiest resources (`scheduling status`)",
                "responses": _responses("200", {"type": "object"}, ("401", "403", "503")),
            }
        },
    }
    for entry in CATALOG:
        paths.setdefault(entry.path, {})[entry.method.lower()] = _command(entry)
    self_book = {**_command(BY_NAME[c.BookAppointment.NAME]), "operationId": "appointment.self-book"}
    self_book["description"] = "a patient token books for its own patient (`patientId` comes from the token)"
    paths["/appointments/self-book"] = {"post": self_book}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Clinic scheduling", "version": "0.1.0"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
