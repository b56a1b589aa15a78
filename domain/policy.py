"""Who may do what: the one access policy, used by the bridge, the HTTP view and the use cases.

Scopes (CONTRACT section 2): commands need `scheduling:write`, queries `scheduling:read`, reminder
dispatch `scheduling:admin`, `allowDoubleBooking` `scheduling:double-book`; `scheduling:admin`
implies every other scope. A token with a `patient_id` claim is a patient token whatever its scopes
(section 9): it may book, reschedule, cancel and check in its own appointments, add itself to the
waitlist, decline or cancel its own entries, and read its own data, nothing else. Every refusal is `FORBIDDEN`.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import DomainError, ErrorCode

READ = "scheduling:read"
WRITE = "scheduling:write"
DOUBLE_BOOK = "scheduling:double-book"
ADMIN = "scheduling:admin"

#: the scope each public command needs; a command not listed is internal (sent by the service itself)
COMMAND_SCOPES: dict[str, str] = {
    "appointment.book": WRITE,
    "appointment.reschedule": WRITE,
    "appointment.status": WRITE,
    "appointment.cancel": WRITE,
    "appointment.check-in": WRITE,
    "schedule.create": WRITE,
    "schedule.add-exception": WRITE,
    "schedule.update": WRITE,
    "schedule.deactivate": WRITE,
    "schedule.remove-exception": WRITE,
    "slot.void": WRITE,
    "slot.create": WRITE,
    "waitlist.add": WRITE,
    "waitlist.fulfill": WRITE,
    "waitlist.decline": WRITE,
    "waitlist.cancel": WRITE,
    "reminder.dispatch": ADMIN,
    "waitlist.expire-offers": ADMIN,
    "holds.expire": ADMIN,
    "portal.appointment.requested": WRITE,
}
#: what a patient token may ask for; for its own patient only (`require_own`)
PATIENT_COMMANDS = frozenset(
    {"appointment.book", "appointment.reschedule", "appointment.cancel", "appointment.check-in", "waitlist.add",
     "waitlist.decline", "waitlist.cancel", "portal.appointment.requested"}
)  # fmt: skip
#: queries with a view of other patients' data: staff only
STAFF_QUERIES = frozenset({"calendar"})


@dataclass(frozen=True)
class Access:
    """What a caller's token grants: its scopes and, for a patient token, its patient."""

    scopes: frozenset[str]
    patient_id: str | None = None

    @property
    def is_patient(self) -> bool:
        return self.patient_id is not None

    def has(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes


def require_scope(access: Access, scope: str) -> None:
    if not access.has(scope):
        raise DomainError(ErrorCode.FORBIDDEN, f"scope {scope} is required")


def authorize_command(access: Access, name: str) -> None:
    """May this caller issue command `name`? Internal commands are the service's own and pass."""
    scope = COMMAND_SCOPES.get(name)
    if scope is None:
        return
    if access.is_patient and name not in PATIENT_COMMANDS:
        raise DomainError(ErrorCode.FORBIDDEN, f"a patient token may not issue {name}")
    require_scope(access, scope)


def authorize_query(access: Access, name: str) -> None:
    require_scope(access, READ)
    if access.is_patient and name in STAFF_QUERIES:
        raise DomainError(ErrorCode.FORBIDDEN, f"the {name} query is not for patient tokens")


def require_own(access: Access, patient_id: str) -> None:
    """A patient token acts and reads for its own patient only."""
    if access.patient_id is not None and access.patient_id != patient_id:
        raise DomainError(ErrorCode.FORBIDDEN, "a patient token acts only for its own patient")
