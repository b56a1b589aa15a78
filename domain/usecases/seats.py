"""Seats of slots and the time of resources and patients: what a booking checks, takes and gives back.

Shared by the appointment use cases (one resource, one decision) and the saga steps (domain/usecases/sagas.py),
so that a slot held across resources passes exactly the checks of a slot booked on its own resource.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.calendar import Calendar
from domain.commands import ReleaseSagaStep
from domain.decisions import Session
from domain.errors import DomainError, ErrorCode
from domain.ids import resource_token, token_of
from domain.model import Appointment, Period, Schedule, Slot, SlotStatus
from domain.saga import SagaStep, StepKind
from domain.usecases.common import _closed, _rules


def patient_token(tenant: str, patient_id: str) -> str:
    """The routing token of a patient's time: its reservations are decided on that partition."""
    return resource_token(tenant, f"Patient/{patient_id}")


def _bookable(
    session: Session,
    slot_id: str,
    *,
    allow_double_booking: bool,
    patient: bool,
    moving: str | None = None,
    busy: ErrorCode = ErrorCode.SLOT_NOT_AVAILABLE,
) -> tuple[Slot, Schedule, list[str]]:
    """The slot, its schedule and the appointments `allowDoubleBooking` overrides, if a booking may take a seat
    of it now; else the refusal (`busy` for a slot that is taken or closed)."""
    slot = session.get(Slot, slot_id, ErrorCode.SLOT_NOT_FOUND)
    if slot.status is not SlotStatus.FREE:
        raise DomainError(busy, f"slot {slot.id} is {slot.status.value}")
    if _closed(session, slot):  # closed by the schedule, though the upkeep's later parts may not have closed it yet
        raise DomainError(busy, f"slot {slot.id} is closed (schedule inactive or exception)")
    schedule = session.get(Schedule, slot.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    _rules(session, schedule.id).check_booking(slot.start, session.ctx.now, patient=patient)
    overlapping = _resource_time(session, schedule, slot, allow_double_booking=allow_double_booking, moving=moving)
    return slot, schedule, overlapping


def _hold(session: Session, slot: Slot, appointment: Appointment, status: SlotStatus) -> None:
    """Take a seat of the slot; the slot becomes `status` once its last seat is taken, and stays free before."""
    booked = slot.booked + 1
    session.save(
        slot.model_copy(update={"booked": booked, "status": status if booked >= slot.capacity else SlotStatus.FREE})
    )
    Calendar(session, token_of(slot.id)).hold(slot, appointment)


def _give_back(session: Session, slot: Slot, appointment_id: str) -> Slot | None:
    """Give a seat of `slot` back; the slot stays unavailable inside an exception. Returns it if it became free."""
    if not Calendar(session, token_of(slot.id)).give_back(slot, appointment_id, slot.period):
        return None
    remaining = [h for h in slot.holds if h.appointment_id != appointment_id]
    status = SlotStatus.BUSY_UNAVAILABLE if _closed(session, slot) else SlotStatus.FREE
    saved = session.save(
        slot.model_copy(update={"status": status, "booked": max(slot.booked - 1, 0), "holds": remaining})
    )
    return saved if status is SlotStatus.FREE else None


def _release(session: Session, appointment: Appointment, *, patient_time: bool = True) -> Slot | None:
    """Give the appointment's slots and time back: here for this resource's slots, by an internal command on
    the partition of every other resource's slot and of the patient's time. Returns the slot of this resource
    that became free, if any (the caller offers it to the waitlist)."""
    home = token_of(appointment.id)
    freed: Slot | None = None
    calendar = Calendar(session, home)
    calendar.vacate(appointment.id, appointment.period)
    for slot_id in (appointment.slot_id, *appointment.additional_slot_ids):
        if token_of(slot_id) != home:
            _release_elsewhere(
                session, appointment.id, SagaStep(kind=StepKind.SLOT, token=token_of(slot_id), slot_id=slot_id)
            )
            continue
        slot = session.find(Slot, slot_id)
        if slot is not None:
            given = _give_back(session, slot, appointment.id)
            freed = freed or (given if slot_id == appointment.slot_id else None)
    if patient_time:
        patient_step = SagaStep(
            kind=StepKind.PATIENT, token=patient_token(appointment.tenant_id, appointment.patient_id)
        )
        _release_elsewhere(session, appointment.id, patient_step, appointment.period)
    return freed


def _release_elsewhere(
    session: Session, appointment_id: str, step: SagaStep, period: Period | None = None, saga_id: str | None = None
) -> None:
    body: dict[str, Any] = {"appointmentId": appointment_id, "step": step.dump()}
    if period is not None:
        body["period"] = period.dump()
    if saga_id is not None:
        body["sagaId"] = saga_id
    session.follow_up(step.token, ReleaseSagaStep.NAME, body)


def _resource_time(
    session: Session, schedule: Schedule, slot: Slot, *, allow_double_booking: bool, moving: str | None = None
) -> list[str]:
    """May the resource take one more appointment in `slot`? Returns the overlapping appointments that
    `allowDoubleBooking` overrides.

    The resource's other active appointments may not overlap the slot, nor lie within the schedule's buffers
    around it (`bufferBeforeMinutes` / `bufferAfterMinutes`, both ways): DOUBLE_BOOKING_DETECTED, unless
    overridden. `maxPerDay` counts the resource's active appointments starting on the slot's local day
    (the pattern's timezone, else UTC): BOOKING_LIMIT_REACHED, never overridden.
    """
    rules = _rules(session, schedule.id)
    calendar = Calendar(session, token_of(slot.id))
    overlapping = calendar.overlapping_appointments(slot.period, excluding=moving, seats_of=slot)
    before, after = rules.buffer_before, rules.buffer_after
    buffered: list[str] = []
    if before or after:  # its own buffers around the slot, and the others' (the same policy) around theirs
        around = {
            *calendar.overlapping_appointments(
                Period(start=slot.start - before, end=slot.end + after), excluding=moving, seats_of=slot
            ),
            *calendar.overlapping_appointments(
                Period(start=slot.start - after, end=slot.end + before), excluding=moving, seats_of=slot
            ),
        }
        buffered = sorted(around - set(overlapping))
    if (overlapping or buffered) and not allow_double_booking:
        details: dict[str, Any] = {"appointmentIds": overlapping or buffered}
        if not overlapping:
            details["rule"] = "buffer"
        raise DomainError(
            ErrorCode.DOUBLE_BOOKING_DETECTED,
            f"{schedule.actor.reference} already has an appointment at or around this time",
            details,
        )
    if rules.max_per_day is not None:
        zone = ZoneInfo(schedule.availability_pattern.timezone if schedule.availability_pattern else "UTC")
        local = slot.start.astimezone(zone).date()
        day_start = datetime.combine(local, time(), tzinfo=zone).astimezone(UTC)
        day_end = datetime.combine(local + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
        that_day = calendar.starting(Period(start=day_start, end=day_end), excluding=moving)
        if len(that_day) >= rules.max_per_day:
            raise DomainError(
                ErrorCode.BOOKING_LIMIT_REACHED,
                f"{schedule.actor.reference} has {len(that_day)} appointments on {local.isoformat()}",
                {"maxPerDay": rules.max_per_day, "day": local.isoformat()},
            )
    return overlapping
