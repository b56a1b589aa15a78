"""Checks that the appointment, schedule and waitlist use cases share, kept in one place so that they agree."""

from __future__ import annotations

from domain.decisions import Session
from domain.model import Period, Schedule, Slot
from domain.policy import require_own


def _check_patient(session: Session, patient_id: str) -> None:
    """A patient token acts only for its own patient (domain/policy.py)."""
    require_own(session.ctx.access, patient_id)


def _in_exception(session: Session, slot: Slot) -> bool:
    schedule = session.find(Schedule, slot.schedule_id)
    return schedule is not None and any(
        Period(start=e.start, end=e.end).overlaps(slot.period) for e in schedule.exceptions
    )
