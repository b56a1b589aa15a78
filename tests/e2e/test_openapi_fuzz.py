"""Property-based fuzzing of the query side against the service's own OpenAPI document.

schemathesis reads `GET /openapi.json` of the running `scheduling dev` and sends generated requests, valid
and invalid, to every query route and to `POST /availability/preview`, with a valid read token of a tenant
that holds a little data. Every answer must be documented, conform to its schema, and never be a 5xx.
Generated ids never name an entity, so a second test asks for the seeded entities by id and checks those
answers against the same document.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from conftest import unique
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.client import Client, eventually

TENANT = "fuzz-tenant"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
HORIZON = {"start": "2027-05-03T00:00:00Z", "end": "2027-05-08T00:00:00Z"}

#: The query routes of CONTRACT section 6. Commands have their own tests; /readyz answers 503 by design
#: while a dependency is down, and the operations routes are not part of the query contract.
QUERY_PATHS = {
    "/slots",
    "/schedules/{id}/slots",
    "/appointments/{id}",
    "/patients/{patientId}/appointments",
    "/calendar",
    "/schedules/{id}",
    "/schedules",
    "/waitlist",
}


def _is_query(ctx: Any) -> bool:
    method, path = ctx.operation.method.upper(), ctx.operation.path
    return (method == "GET" and path in QUERY_PATHS) or (method == "POST" and path == "/availability/preview")


@pytest.fixture(scope="session")
async def seeded(service: Any) -> dict[str, Any]:
    """One schedule with a pattern, a booked and a cancelled appointment, waitlist entries, a registered patient."""
    async with Client(service) as client:
        actor = unique("Practitioner/fuzz")
        schedule = await client.ok(
            "schedule.create",
            {
                "actor": {"reference": actor, "type": "Practitioner"},
                "locationId": "fuzz-clinic",
                "serviceType": "general-practice",
                "planningHorizon": HORIZON,
                "availabilityPattern": {
                    "windows": [{"daysOfWeek": ["mon", "wed"], "startTime": "09:00", "endTime": "10:00"}],
                    "slotMinutes": 20,
                    "timezone": "Europe/Berlin",
                },
            },
            tenant=TENANT,
        )
        status, body, _ = await client.get(f"/schedules/{schedule['id']}/slots", headers=service.auth(TENANT))
        assert status == 200, body
        slots = body["data"]
        patient = unique("pat")
        booked = await client.ok(
            "appointment.book",
            {"slotId": slots[0]["id"], "patientId": patient, "description": "fuzz"},
            tenant=TENANT,
        )
        cancelled = await client.ok("appointment.book", {"slotId": slots[1]["id"], "patientId": patient}, tenant=TENANT)
        await client.ok("appointment.cancel", {"appointmentId": cancelled["id"], "reason": "fuzz"}, tenant=TENANT)
        await client.ok(
            "schedule.add-exception",
            {"scheduleId": schedule["id"], "start": slots[-1]["start"], "end": slots[-1]["end"]},
            tenant=TENANT,
        )
        for priority, provider in ((3, actor), (0, None)):
            entry = {"patientId": patient, "serviceType": "general-practice", "requestedPeriod": HORIZON}
            await client.ok(
                "waitlist.add", {**entry, "priority": priority, **({"providerId": provider} if provider else {})},
                tenant=TENANT,
            )  # fmt: skip
        registered = {"patientId": patient, "name": "Fuzz", "birthDate": "1990-01-01", "telecom": [{"x": 1}]}
        raw = json.dumps(registered).encode()
        await client.nc.publish("registration.patient.registered", raw, headers=service.auth(TENANT))

        async def enriched() -> bool:
            status, body, _ = await client.get(f"/appointments/{booked['id']}", headers=service.auth(TENANT))
            return status == 200 and "patient" in body["data"]

        await eventually(enriched)
    return {"schedule": schedule, "actor": actor, "patient": patient, "booked": booked, "cancelled": cancelled}


@pytest.fixture(scope="session")
def api_schema(service: Any, seeded: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_url(f"{service.http}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema").include(func=_is_query)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_query_routes_conform_to_their_openapi_document(case: Any, service: Any) -> None:
    case.call_and_validate(headers=service.auth(TENANT, scope="scheduling:read"), checks=CHECKS, timeout=30)


def test_answers_about_existing_entities_conform_to_the_openapi_document(
    api_schema: Any, service: Any, seeded: dict[str, Any]
) -> None:
    schedule_id, patient = seeded["schedule"]["id"], seeded["patient"]
    week = {"from": HORIZON["start"], "to": HORIZON["end"]}
    cases = [
        ("/slots", {}, {**week, "providerId": seeded["actor"], "limit": 2}),
        ("/schedules/{id}/slots", {"id": schedule_id}, {"limit": 3}),
        ("/appointments/{id}", {"id": seeded["booked"]["id"]}, {}),
        ("/appointments/{id}", {"id": seeded["cancelled"]["id"]}, {}),
        ("/patients/{patientId}/appointments", {"patientId": patient}, {"limit": 1}),
        ("/calendar", {}, {**week, "facilityId": "fuzz-clinic"}),
        ("/schedules/{id}", {"id": schedule_id}, {}),
        ("/schedules", {}, {"actorId": seeded["actor"]}),
        ("/waitlist", {}, {"limit": 1}),
        ("/waitlist", {}, {"status": "waiting"}),
    ]
    for path, path_parameters, query in cases:
        case = api_schema[path]["GET"].Case(path_parameters=path_parameters, query=query)
        response = case.call_and_validate(headers=service.auth(TENANT, scope="scheduling:read"), checks=CHECKS)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        assert body["data"], (path, body)
    preview = api_schema["/availability/preview"]["POST"].Case(
        body={"availabilityPattern": seeded["schedule"]["availabilityPattern"], "range": HORIZON},
        media_type="application/json",
    )
    response = preview.call_and_validate(headers=service.auth(TENANT, scope="scheduling:read"), checks=CHECKS)
    assert response.status_code == 200 and response.json()["count"] == 6


def _is_command(ctx: Any) -> bool:
    method, path = ctx.operation.method.upper(), ctx.operation.path
    return method in {"POST", "PATCH", "DELETE"} and path != "/availability/preview"


commands = schemathesis.pytest.from_fixture("api_schema").include(func=_is_command)


@commands.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_command_routes_never_answer_a_server_error(case: Any, service: Any) -> None:
    """Generated bodies, valid and invalid, on every command route: a clear 4xx or a success, never a 5xx."""
    headers = service.auth(TENANT, scope="scheduling:read scheduling:write")
    case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=30)
