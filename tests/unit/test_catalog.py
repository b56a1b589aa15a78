"""The command catalog is the one declaration: the bridge's allow-list, the HTTP routes and the OpenAPI
document all derive from it, and internal commands appear in none of them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from domain.commands import COMMANDS
from scheduling.core.catalog import CATALOG, PUBLIC_NAMES
from scheduling.core.config import Settings
from scheduling.http import view
from scheduling.http.openapi import document


def _routes() -> set[tuple[str, str]]:
    settings = replace(Settings(), jwt_secret="s" * 32)
    app = view.build(settings, Any, Any, Any)  # type: ignore[arg-type]  # routes only: nothing is served
    return {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}


def test_every_public_command_has_one_route_one_subject_and_one_operation() -> None:
    routes, paths = _routes(), document()["paths"]
    for entry in CATALOG:
        assert (entry.method, entry.path) in routes
        operation = paths[entry.path][entry.method.lower()]
        assert operation["operationId"] == entry.name and entry.subject in operation["description"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert schema.endswith("/" + entry.command.__name__)
    assert len({e.name for e in CATALOG}) == len({e.path for e in CATALOG}) == len(CATALOG)


def test_internal_commands_are_not_public() -> None:
    internal = set(COMMANDS) - PUBLIC_NAMES
    assert {"schedule.open-slots", "waitlist.offer", "reminder.sent", "waitlist.verify-appointment"} <= internal
    operations = {op["operationId"] for p in document()["paths"].values() for op in p.values() if "operationId" in op}
    assert not internal & operations


def test_the_document_shows_the_clinic_rules() -> None:
    """Issue 11: the new routes, the booking policy on schedules and the new error codes."""
    doc = document()
    for path in ("/waitlist/{id}/decline", "/waitlist/{id}/cancel", "/waitlist/expire-offers"):
        assert "post" in doc["paths"][path]
    schemas = doc["components"]["schemas"]
    policy = schemas["BookingPolicy"]["properties"]
    assert {"minNoticeMinutes", "maxAdvanceDays", "cancellationCutoffMinutes", "checkInWindow",
            "reminderLeadMinutes", "waitlistOfferMinutes"} <= set(policy)  # fmt: skip
    assert "bookingPolicy" in schemas["Schedule"]["properties"]
    assert "bookingPolicy" in schemas["CreateSchedule"]["properties"]
    assert {"offerExpiresAt", "declinedSlotIds"} <= set(schemas["WaitlistEntry"]["properties"])
    codes = schemas["Error"]["properties"]["error"]["properties"]["code"]
    assert {"OUTSIDE_BOOKING_WINDOW", "CANCELLATION_CUTOFF", "OUTSIDE_CHECK_IN_WINDOW"} <= set(codes["enum"])
    assert "OUTSIDE_CHECK_IN_WINDOW: 409" in codes["description"]
