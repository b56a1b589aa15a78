"""The FHIR appointment status graph (CONTRACT section 1)."""

from __future__ import annotations

from enum import StrEnum


class AppointmentStatus(StrEnum):
    PROPOSED = "proposed"
    PENDING = "pending"
    BOOKED = "booked"
    ARRIVED = "arrived"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"
    ENTERED_IN_ERROR = "entered-in-error"
    CHECKED_IN = "checked-in"
    WAITLIST = "waitlist"


S = AppointmentStatus

TRANSITIONS: dict[AppointmentStatus, frozenset[AppointmentStatus]] = {
    S.PROPOSED: frozenset({S.PENDING, S.BOOKED, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.PENDING: frozenset({S.BOOKED, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.BOOKED: frozenset({S.CHECKED_IN, S.ARRIVED, S.NOSHOW, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.CHECKED_IN: frozenset({S.ARRIVED, S.FULFILLED, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.ARRIVED: frozenset({S.FULFILLED, S.ENTERED_IN_ERROR}),
}

FINAL = frozenset({S.FULFILLED, S.CANCELLED, S.NOSHOW, S.ENTERED_IN_ERROR})

#: Statuses the graph still moves on from (the appointment is yet to happen or under way).
ACTIVE = frozenset(TRANSITIONS)


def can_transition(current: AppointmentStatus, new: AppointmentStatus) -> bool:
    return new in TRANSITIONS.get(current, frozenset())
