"""Use cases of an appointment: booking (by staff or from the portal), rescheduling, status changes, cancellation
and check-in. Each holds or gives back its slot and the resource's time in the same decision."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain import commands as c
from domain.booking_policy import check_started
from domain.calendar import Calendar
from domain.decisions import DOUBLE_BOOK, Session
from domain.errors import DomainError, ErrorCode, validation_error
from domain.ids import mint, resource_token, token_of
from domain.model import Actor, ActorType, Appointment, Participant, Period, Schedule, Slot, SlotStatus
from domain.status import AppointmentStatus, can_transition
from domain.usecases.common import _appointment_rules, _check_patient, _check_version, _closed, _rules
from domain.usecases.waitlist import _offer_to_waitlist

S = AppointmentStatus
#: Statuses that give the slot and the resource's time back.
RELEASING = frozenset({S.CANCELLED, S.NOSHOW, S.ENTERED_IN_ERROR})


def _appointment_to_change(session: Session, appointment_id: str, expected_version: int | None) -> Appointment:
    """The appointment a modifying command names, once scope, patient and optimistic lock allow the change."""
    appointment = session.get(Appointment, appointment_id, ErrorCode.APPOINTMENT_NOT_FOUND)
    _check_patient(session, appointment.patient_id)
    _check_version(appointment, expected_version)
    return appointment


def _hold(session: Session, slot: Slot, appointment: Appointment, status: SlotStatus) -> None:
    """Take a seat of the slot; the slot becomes `status` once its last seat is taken, and stays free before."""
    booked = slot.booked + 1
    session.save(
        slot.model_copy(update={"booked": booked, "status": status if booked >= slot.capacity else SlotStatus.FREE})
    )
    Calendar(session, token_of(slot.id)).hold(slot, appointment)


def _release(session: Session, appointment: Appointment) -> Slot | None:
    """Give the appointment's slot and time back; the slot stays unavailable inside an exception.

    Returns the slot if it became free.
    """
    slot = session.find(Slot, appointment.slot_id)
    if not Calendar(session, token_of(appointment.id)).release(slot, appointment) or slot is None:
        return None
    status = SlotStatus.BUSY_UNAVAILABLE if _closed(session, slot) else SlotStatus.FREE
    saved = session.save(slot.model_copy(update={"status": status, "booked": max(slot.booked - 1, 0)}))
    return saved if status is SlotStatus.FREE else None


def _book_into(
    session: Session,
    *,
    slot_id: str,
    patient_id: str,
    status: AppointmentStatus,
    slot_status: SlotStatus,
    allow_double_booking: bool,
    service_type: str | None,
    participants: list[Participant],
    description: str | None,
    seed: str,
) -> dict[str, Any]:
    slot = session.get(Slot, slot_id, ErrorCode.SLOT_NOT_FOUND)
    if slot.status is not SlotStatus.FREE:
        raise DomainError(ErrorCode.SLOT_NOT_AVAILABLE, f"slot {slot.id} is {slot.status.value}")
    if _closed(session, slot):  # closed by the schedule, though the upkeep's later parts may not have closed it yet
        raise DomainError(ErrorCode.SLOT_NOT_AVAILABLE, f"slot {slot.id} is closed (schedule inactive or exception)")
    schedule = session.get(Schedule, slot.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    _rules(session, schedule.id).check_booking(slot.start, session.ctx.now, patient=session.ctx.access.is_patient)
    token = token_of(slot.id)
    overlapping = _resource_time(session, schedule, slot, allow_double_booking=allow_double_booking)
    appointment = Appointment(
        id=mint("ap", token, session.ctx.tenant, seed),
        tenant_id=session.ctx.tenant,
        status=status,
        slot_id=slot.id,
        start=slot.start,
        end=slot.end,
        service_type=service_type or schedule.service_type,
        participants=[
            Participant(actor=schedule.actor),
            Participant(actor=Actor(reference=f"Patient/{patient_id}", type=ActorType.PATIENT)),
            *participants,
        ],
        patient_id=patient_id,
        description=description,
        provider_id=schedule.actor.reference,
        location_id=schedule.location_id,
    )
    if session.exists("appointment", appointment.id):
        raise validation_error([{"field": "commandId", "message": "already used for another appointment"}])
    if overlapping:
        slot = slot.model_copy(update={"overbooked": True})
    _hold(session, slot, appointment, slot_status)
    saved = session.save(appointment)
    session.emit("appointment.created", saved)
    return saved.dump()


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


def book(cmd: c.BookAppointment, session: Session) -> dict[str, Any]:
    if cmd.allow_double_booking and not session.ctx.access.has(DOUBLE_BOOK):
        raise DomainError(
            ErrorCode.DOUBLE_BOOKING_OVERRIDE_DENIED,
            "allowDoubleBooking needs scope scheduling:double-book",
        )
    _check_patient(session, cmd.patient_id)
    return _book_into(
        session,
        slot_id=cmd.slot_id,
        patient_id=cmd.patient_id,
        status=S.BOOKED,
        slot_status=SlotStatus.BUSY,
        allow_double_booking=cmd.allow_double_booking,
        service_type=cmd.service_type,
        participants=cmd.participants,
        description=cmd.description,
        seed=session.ctx.command_id,
    )


def portal_request(cmd: c.BridgePortalAppointment, session: Session) -> dict[str, Any]:
    _check_patient(session, cmd.patient_id)
    slot_id = cmd.slot_id or _find_free_slot(session, cmd)
    return _book_into(
        session,
        slot_id=slot_id,
        patient_id=cmd.patient_id,
        status=S.PROPOSED,
        slot_status=SlotStatus.BUSY_TENTATIVE,
        allow_double_booking=False,
        service_type=cmd.service_type,
        participants=[],
        description=cmd.note,
        seed=f"portal:{cmd.request_id}",
    )


def _find_free_slot(session: Session, cmd: c.BridgePortalAppointment) -> str:
    assert cmd.start is not None and cmd.end is not None
    calendar = Calendar(session, resource_token(session.ctx.tenant, cmd.provider_id or "*"))
    for slot_id, ref in calendar.slots(Period(start=cmd.start, end=cmd.end)):
        if ref.start == cmd.start and ref.end == cmd.end:
            slot = session.find(Slot, slot_id)
            if slot is not None and slot.status is SlotStatus.FREE:
                return slot_id
    raise DomainError(ErrorCode.SLOT_NOT_AVAILABLE, "no free slot of that provider at that time")


def reschedule(cmd: c.RescheduleAppointment, session: Session) -> dict[str, Any]:
    appointment = _appointment_to_change(session, cmd.appointment_id, cmd.expected_version)
    if appointment.status not in {S.PROPOSED, S.PENDING, S.BOOKED}:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"a {appointment.status.value} appointment cannot be rescheduled",
        )
    token = token_of(appointment.id)
    if token_of(cmd.new_slot_id) != token:
        raise DomainError(
            ErrorCode.NEW_SLOT_NOT_AVAILABLE,
            "the new slot belongs to another resource; cancel and book instead",
            {"reason": "other-resource"},
        )
    patient, now = session.ctx.access.is_patient, session.ctx.now
    _appointment_rules(session, appointment).check_cancellation(appointment.start, now, patient=patient)
    new_slot = session.get(Slot, cmd.new_slot_id, ErrorCode.SLOT_NOT_FOUND)
    if new_slot.id == appointment.slot_id or new_slot.status is not SlotStatus.FREE:
        raise DomainError(ErrorCode.NEW_SLOT_NOT_AVAILABLE, f"slot {new_slot.id} is not free")
    _rules(session, new_slot.schedule_id).check_booking(new_slot.start, now, patient=patient)
    if _closed(session, new_slot):
        raise DomainError(ErrorCode.NEW_SLOT_NOT_AVAILABLE, f"slot {new_slot.id} is closed (schedule or exception)")
    new_schedule = session.get(Schedule, new_slot.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    _resource_time(session, new_schedule, new_slot, allow_double_booking=False, moving=appointment.id)
    slot_status = SlotStatus.BUSY_TENTATIVE if appointment.status is S.PROPOSED else SlotStatus.BUSY
    # the reminders sent were for the old time: the new time gets its own
    moved = appointment.model_copy(
        update={"slot_id": new_slot.id, "start": new_slot.start, "end": new_slot.end, "reminders_sent": []}
    )
    freed = _release(session, appointment)
    _hold(session, new_slot, moved, slot_status)
    saved = session.save(moved)
    session.emit("appointment.updated", saved)
    _offer_to_waitlist(session, freed)
    return saved.dump()


def _transition(
    session: Session,
    appointment: Appointment,
    new: AppointmentStatus,
    event_type: str,
    reason: str | None = None,
) -> Appointment:
    """Move along the status graph, emit `event_type`, then offer a freed slot to the waitlist."""
    if not can_transition(appointment.status, new):
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"{appointment.status.value} -> {new.value} is not allowed",
            {"from": appointment.status.value, "to": new.value},
        )
    update: dict[str, Any] = {"status": new}
    if reason is not None:
        update["cancellation_reason"] = reason
    changed = appointment.model_copy(update=update)
    freed: Slot | None = None
    if new in RELEASING:
        freed = _release(session, appointment)
    elif appointment.status is S.PROPOSED and new in {S.PENDING, S.BOOKED}:
        slot = session.find(Slot, appointment.slot_id)
        if slot is not None and slot.status is SlotStatus.BUSY_TENTATIVE:
            session.save(slot.model_copy(update={"status": SlotStatus.BUSY}))
    saved = session.save(changed)
    session.emit(event_type, saved)
    _offer_to_waitlist(session, freed)
    return saved


#: statuses that say the patient is at the clinic: only inside the check-in window
AT_THE_CLINIC = frozenset({S.CHECKED_IN, S.ARRIVED})
#: statuses that say the appointment took place, or did not: only once it has started
AFTER_THE_START = frozenset({S.FULFILLED, S.NOSHOW})


def update_status(cmd: c.UpdateAppointmentStatus, session: Session) -> dict[str, Any]:
    appointment = _appointment_to_change(session, cmd.appointment_id, cmd.expected_version)
    if can_transition(appointment.status, cmd.status):
        if cmd.status in AT_THE_CLINIC:
            _appointment_rules(session, appointment).check_in_window(appointment.start, session.ctx.now)
        elif cmd.status in AFTER_THE_START:
            check_started(appointment.start, session.ctx.now, cmd.status.value)
    saved = _transition(session, appointment, cmd.status, f"appointment.{cmd.status.value}")
    return saved.dump()


def cancel(cmd: c.CancelAppointment, session: Session) -> dict[str, Any]:
    appointment = _appointment_to_change(session, cmd.appointment_id, cmd.expected_version)
    if can_transition(appointment.status, S.CANCELLED):
        rules = _appointment_rules(session, appointment)
        rules.check_cancellation(appointment.start, session.ctx.now, patient=session.ctx.access.is_patient)
    saved = _transition(session, appointment, S.CANCELLED, "appointment.cancelled", cmd.reason)
    return saved.dump()


def check_in(cmd: c.CheckInPatient, session: Session) -> dict[str, Any]:
    appointment = _appointment_to_change(session, cmd.appointment_id, cmd.expected_version)
    if can_transition(appointment.status, S.CHECKED_IN):
        _appointment_rules(session, appointment).check_in_window(appointment.start, session.ctx.now)
    saved = _transition(session, appointment, S.CHECKED_IN, "checkin.completed")
    return saved.dump()
