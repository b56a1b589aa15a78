"""Checks that the appointment, schedule and waitlist use cases share, kept in one place so that they agree."""

from __future__ import annotations

from domain.booking_policy import Rules, rules_of
from domain.decisions import Session
from domain.errors import DomainError, ErrorCode
from domain.model import Appointment, BookingPolicy, Entity, Schedule, Slot
from domain.policy import require_own
from domain.usecases.upkeep import still_open


def _check_patient(session: Session, patient_id: str) -> None:
    """A patient token acts only for its own patient (domain/policy.py)."""
    require_own(session.ctx.access, patient_id)


def _check_version(entity: Entity, expected: int | None) -> None:
    """Optimistic locking: the command names the version it was made against."""
    if expected is not None and expected != entity.version:
        raise DomainError(
            ErrorCode.OPTIMISTIC_LOCK_CONFLICT,
            f"expected version {expected}, current version is {entity.version}",
            {"expectedVersion": expected, "currentVersion": entity.version},
        )


def _closed(session: Session, slot: Slot) -> bool:
    """The slot's schedule takes no bookings in it (inactive, outside its horizon, inside an exception, or
    what opened it is gone), even if the upkeep's later parts have not closed the slot yet."""
    return not still_open(session.find(Schedule, slot.schedule_id), slot)


def _rules(session: Session, schedule_id: str | None) -> Rules:
    """The booking rules of a schedule: its own policy over the service's defaults.

    A schedule this partition does not hold (an entry's offer made from another partition) has the defaults.
    """
    schedule = session.find(Schedule, schedule_id) if schedule_id else None
    policy = schedule.booking_policy if schedule is not None else BookingPolicy()
    return rules_of(policy, session.ctx.policy)


def _appointment_rules(session: Session, appointment: Appointment) -> Rules:
    slot = session.find(Slot, appointment.slot_id)
    return _rules(session, slot.schedule_id if slot is not None else None)
