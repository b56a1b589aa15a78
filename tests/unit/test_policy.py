"""The access policy as a table: every public command and query × staff, patient, admin, no scope."""

from __future__ import annotations

import pytest

from domain.errors import DomainError, ErrorCode
from domain.policy import (
    COMMAND_SCOPES,
    Access,
    authorize_command,
    authorize_query,
    require_own,
)

STAFF = Access(frozenset({"scheduling:read", "scheduling:write"}))
PATIENT = Access(frozenset({"scheduling:read", "scheduling:write"}), patient_id="pat-1")
PATIENT_ADMIN = Access(frozenset({"scheduling:admin"}), patient_id="pat-1")  # a patient whatever its scopes
ADMIN = Access(frozenset({"scheduling:admin"}))
NO_SCOPE = Access(frozenset())
READER = Access(frozenset({"scheduling:read"}))

ALLOWED = "allowed"
COMMANDS: dict[str, dict[str, str]] = {
    #                         staff      patient    admin      no scope   read only
    "appointment.book":       {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED},
    "appointment.reschedule": {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED},
    "appointment.status":     {"staff": ALLOWED, "admin": ALLOWED},
    "appointment.cancel":     {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED},
    "appointment.check-in":   {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED},
    "schedule.create":        {"staff": ALLOWED, "admin": ALLOWED},
    "schedule.add-exception": {"staff": ALLOWED, "admin": ALLOWED},
    "schedule.update":        {"staff": ALLOWED, "admin": ALLOWED},
    "schedule.deactivate":    {"staff": ALLOWED, "admin": ALLOWED},
    "schedule.remove-exception": {"staff": ALLOWED, "admin": ALLOWED},
    "slot.void":              {"staff": ALLOWED, "admin": ALLOWED},
    "slot.create":            {"staff": ALLOWED, "admin": ALLOWED},
    "waitlist.add":           {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED},
    "waitlist.fulfill":       {"staff": ALLOWED, "admin": ALLOWED},
    "waitlist.decline":       {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED},
    "waitlist.cancel":        {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED},
    "reminder.dispatch":      {"admin": ALLOWED},
    "waitlist.expire-offers": {"admin": ALLOWED},
    "holds.expire":           {"admin": ALLOWED},
    "portal.appointment.requested": {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED},
}  # fmt: skip
QUERIES: dict[str, dict[str, str]] = {
    name: {"staff": ALLOWED, "patient": ALLOWED, "admin": ALLOWED, "reader": ALLOWED}
    for name in ("search_slots", "schedule_slots", "get_appointment", "patient_appointments", "get_schedule",
                 "list_schedules", "get_waitlist", "preview")
} | {"calendar": {"staff": ALLOWED, "admin": ALLOWED, "reader": ALLOWED}}  # fmt: skip
CALLERS = {"staff": STAFF, "patient": PATIENT, "admin": ADMIN, "no scope": NO_SCOPE, "reader": READER,
           "patient with admin scope": PATIENT_ADMIN}  # fmt: skip


def _outcome(check: object, access: Access, name: str) -> str:
    try:
        check(access, name)  # type: ignore[operator]
    except DomainError as refused:
        assert refused.status == 403
        return refused.code.value
    return ALLOWED


def test_the_table_covers_every_public_command() -> None:
    assert set(COMMANDS) == set(COMMAND_SCOPES)


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_commands(name: str, caller: str) -> None:
    expected = COMMANDS[name].get("patient" if caller.startswith("patient") else caller, ErrorCode.FORBIDDEN.value)
    assert _outcome(authorize_command, CALLERS[caller], name) == expected


@pytest.mark.parametrize("name", sorted(QUERIES))
@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_queries(name: str, caller: str) -> None:
    expected = QUERIES[name].get("patient" if caller.startswith("patient") else caller, ErrorCode.FORBIDDEN.value)
    assert _outcome(authorize_query, CALLERS[caller], name) == expected


def test_internal_commands_are_the_services_own() -> None:
    authorize_command(NO_SCOPE, "waitlist.offer")


def test_a_patient_acts_for_its_own_patient_only_and_staff_for_anyone() -> None:
    require_own(PATIENT, "pat-1")
    require_own(STAFF, "pat-9")
    with pytest.raises(DomainError) as refused:
        require_own(PATIENT, "pat-9")
    assert refused.value.code is ErrorCode.FORBIDDEN
