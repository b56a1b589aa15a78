"""Operator routes: health, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import aiohttp
from conftest import unique
from support.client import Client

CONTRACT_ROUTES = {
    ("get", "/slots"), ("get", "/schedules/{id}/slots"), ("post", "/schedules/{id}/slots"),
    ("get", "/appointments/{id}"), ("get", "/patients/{patientId}/appointments"), ("get", "/calendar"),
    ("get", "/schedules/{id}"), ("get", "/schedules"), ("post", "/schedules"), ("get", "/waitlist"),
    ("post", "/waitlist"), ("post", "/waitlist/{id}/fulfill"), ("post", "/availability/preview"),
    ("post", "/appointments"), ("post", "/appointments/self-book"), ("post", "/appointments/{id}/reschedule"),
    ("post", "/appointments/{id}/status"), ("post", "/appointments/{id}/cancel"),
    ("post", "/appointments/{id}/check-in"), ("post", "/schedules/{id}/exceptions"), ("post", "/reminders/dispatch"),
    ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/openapi.json"),
}  # fmt: skip


async def _text(service: Any, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(service.http) as http, http.get(path) as response:
        return response.status, await response.text()


async def test_health_and_readiness(service: Any) -> None:
    async with Client(service) as client:
        status, body, _ = await client.get("/healthz", headers={})
        assert status == 200 and body == {"ok": True}
        status, body, _ = await client.get("/readyz", headers={})
        assert status == 200
        assert body["checks"] == {"tables": True, "database": True, "nats": True, "kafka": True, "progress": True}
        assert body["stalled"] == []


async def test_metrics_count_commands_by_type_and_outcome_and_report_lag(service: Any) -> None:
    async with Client(service) as client:
        refused = await client.command("appointment.cancel", {"appointmentId": "ap-000000000000-metrics"})
        assert refused["error"]["code"] == "APPOINTMENT_NOT_FOUND"
        await client.ok(
            "schedule.create",
            {
                "actor": {"reference": unique("Practitioner/m"), "type": "Practitioner"},
                "locationId": "loc",
                "serviceType": "gp",
                "planningHorizon": {"start": "2027-06-01T00:00:00Z", "end": "2027-06-02T00:00:00Z"},
            },
        )
    status, text = await _text(service, "/metrics")
    assert status == 200
    lines = text.splitlines()
    assert any(
        line.startswith('scheduling_commands_total{outcome="APPOINTMENT_NOT_FOUND",type="appointment.cancel"}')
        for line in lines
    )
    assert any(line.startswith('scheduling_commands_total{outcome="ok",type="schedule.create"}') for line in lines)
    assert any(line.startswith('scheduling_decision_seconds_count{type="schedule.create"}') for line in lines)
    for gauge in ("consumer", "projector", "relay"):
        values = [ln for ln in lines if ln.startswith(f"scheduling_{gauge}_lag_records{{")]
        assert len(values) == 4 and all(float(v.split()[-1]) >= 0 for v in values)


async def test_openapi_documents_every_contract_route(service: Any) -> None:
    async with Client(service) as client:
        status, document, _ = await client.get("/openapi.json", headers={})
    assert status == 200 and document["openapi"].startswith("3.1")
    documented = {
        (method, path) for path, item in document["paths"].items() for method in item if method != "parameters"
    }
    assert CONTRACT_ROUTES <= documented
