"""Use cases of an appointment: booking (by staff or from the portal), rescheduling, status changes, cancellation
and check-in.

Booking and rescheduling hold the patient's time and any other resource's slots first, by a saga
(domain/usecases/sagas.py), and take this resource's slot when it settles; status changes and cancellation
give back this resource's slot in the same decision and the others' by internal commands.
"""

from __future__ import annotations

from typing import Any

from domain import commands as c
from domain.booking_policy import check_started
from domain.calendar import Calendar
from domain.decisions import DOUBLE_BOOK, Session
from domain.errors import DomainError, ErrorCode, validation_error
from domain.ids import mint, resource_token, token_of
from domain.model import Actor, ActorType, Appointment, Participant, PendingMove, Period, Schedule, Slot, SlotStatus
from domain.saga import EXPIRED, Intent, NewAppointment, SagaPlan, SagaStep, StepKind, Target
from domain.status import AppointmentStatus, can_transition
from domain.usecases import sagas
from domain.usecases.common import _appointment_rules, _check_patient, _check_version
from domain.usecases.seats import _bookable, _hold, _release, patient_token
from domain.usecases.waitlist import _offer_to_waitlist

S = AppointmentStatus
#: statuses an appointment may be rescheduled from
MOVABLE = frozenset({S.PROPOSED, S.PENDING, S.BOOKED})
#: Statuses that give the slot and the resource's time back.
RELEASING = frozenset({S.CANCELLED, S.NOSHOW, S.ENTERED_IN_ERROR})


def _appointment_to_change(session: Session, appointment_id: str, expected_version: int | None) -> Appointment:
    """The appointment a modifying command names, once scope, patient and optimistic lock allow the change."""
    appointment = session.get(Appointment, appointment_id, ErrorCode.APPOINTMENT_NOT_FOUND)
    _check_patient(session, appointment.patient_id)
    _check_version(appointment, expected_version)
    return appointment


def _steps(session: Session, home: str, patient_id: str, slot_ids: list[str]) -> list[SagaStep]:
    """The saga's steps: every slot of another resource than `home`, then the patient's time."""
    steps = [SagaStep(kind=StepKind.SLOT, token=token_of(s), slot_id=s) for s in slot_ids if token_of(s) != home]
    return [*steps, SagaStep(kind=StepKind.PATIENT, token=patient_token(session.ctx.tenant, patient_id))]


def _additional(main: str, additional: list[str]) -> list[str]:
    if len(set(additional)) != len(additional) or main in additional:
        problem = "additionalSlotIds must be distinct slots other than the main one"
        raise validation_error([{"field": "additionalSlotIds", "message": problem}])
    return additional


def _plan(session: Session, **fields: Any) -> SagaPlan:
    """A saga started by this command: named after it (a repeat of it is answered with the saga's outcome)."""
    ctx = session.ctx
    return SagaPlan(
        id=ctx.command_id,
        tenant=ctx.tenant,
        expires_at=ctx.now + ctx.hold_for,
        origin_caller=str(ctx.subject),
        origin_command=ctx.command_id,
        **fields,
    )


def _unused(session: Session, appointment_id: str) -> str:
    """A new appointment's id, unless the command id that mints it made another appointment already."""
    if session.exists("appointment", appointment_id):
        raise validation_error([{"field": "commandId", "message": "already used for another appointment"}])
    return appointment_id


def _start_booking(
    session: Session,
    *,
    slot_id: str,
    additional_slot_ids: list[str],
    patient_id: str,
    status: AppointmentStatus,
    allow_double_booking: bool,
    service_type: str | None,
    participants: list[Participant],
    description: str | None,
    seed: str,
) -> dict[str, Any]:
    """Check what this resource holds, then hold the other resources' slots and the patient's time (a saga).

    The appointment is created when the saga settles here, after the same checks again."""
    patient = session.ctx.access.is_patient
    slot, _, overlapping = _bookable(session, slot_id, allow_double_booking=allow_double_booking, patient=patient)
    home = token_of(slot.id)
    appointment_id = _unused(session, mint("ap", home, session.ctx.tenant, seed))
    additional = _additional(slot.id, additional_slot_ids)
    plan = _plan(
        session,
        intent=Intent.BOOK,
        home=home,
        appointment_id=appointment_id,
        patient_id=patient_id,
        slot_id=slot.id,
        additional_slot_ids=additional,
        period=slot.period,
        steps=_steps(session, home, patient_id, additional),
        by_patient=patient,
        allow_double_booking=allow_double_booking,
        booking=NewAppointment(
            status=status, service_type=service_type, participants=participants, description=description
        ),
        patient_time_as_appointment=True,
    )
    sagas.hold_seat(session, slot, plan, overlapping)  # first come, first served: the others are refused now
    return sagas.start(session, plan)


def create_appointment(session: Session, plan: SagaPlan) -> dict[str, Any]:
    """A booking's saga held every other resource: its seat of this resource's slot becomes the appointment's
    (any other slot of this resource it names is checked and taken now)."""
    assert plan.booking is not None
    booking = plan.booking
    patient, double = plan.by_patient, plan.allow_double_booking
    slot = session.get(Slot, plan.slot_id, ErrorCode.SLOT_NOT_FOUND)
    if not any(h.saga_id == plan.id for h in slot.holds):
        raise DomainError(ErrorCode.SLOT_NOT_AVAILABLE, "the booking was given up", dict(EXPIRED))
    schedule = session.get(Schedule, slot.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    local = [
        _bookable(session, s, allow_double_booking=double, patient=patient)[0]
        for s in plan.additional_slot_ids
        if token_of(s) == plan.home
    ]
    appointment = Appointment(
        id=_unused(session, plan.appointment_id),
        tenant_id=session.ctx.tenant,
        status=booking.status,
        slot_id=slot.id,
        start=slot.start,
        end=slot.end,
        service_type=booking.service_type or schedule.service_type,
        participants=[
            Participant(actor=schedule.actor),
            Participant(actor=Actor(reference=f"Patient/{plan.patient_id}", type=ActorType.PATIENT)),
            *booking.participants,
            *(Participant(actor=a) for a in plan.actors),
        ],
        patient_id=plan.patient_id,
        description=booking.description,
        provider_id=schedule.actor.reference,
        location_id=schedule.location_id,
        additional_slot_ids=plan.additional_slot_ids,
    )
    slot_status = SlotStatus.BUSY_TENTATIVE if booking.status is S.PROPOSED else SlotStatus.BUSY
    sagas.confirm_seat(session, slot, plan)
    for other in local:
        _hold(session, other, appointment, slot_status)
    saved = session.save(appointment)
    session.emit("appointment.created", saved)
    return saved.dump()


def book(cmd: c.BookAppointment, session: Session) -> dict[str, Any]:
    if cmd.allow_double_booking and not session.ctx.access.has(DOUBLE_BOOK):
        raise DomainError(
            ErrorCode.DOUBLE_BOOKING_OVERRIDE_DENIED,
            "allowDoubleBooking needs scope scheduling:double-book",
        )
    _check_patient(session, cmd.patient_id)
    return _start_booking(
        session,
        slot_id=cmd.slot_id,
        additional_slot_ids=cmd.additional_slot_ids,
        patient_id=cmd.patient_id,
        status=S.BOOKED,
        allow_double_booking=cmd.allow_double_booking,
        service_type=cmd.service_type,
        participants=cmd.participants,
        description=cmd.description,
        seed=session.ctx.command_id,
    )


def portal_request(cmd: c.BridgePortalAppointment, session: Session) -> dict[str, Any]:
    _check_patient(session, cmd.patient_id)
    slot_id = cmd.slot_id or _find_free_slot(session, cmd)
    return _start_booking(
        session,
        slot_id=slot_id,
        additional_slot_ids=[],
        patient_id=cmd.patient_id,
        status=S.PROPOSED,
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
    """Move the appointment to a slot of any resource, with other resources' slots at the new time (a saga).

    What this resource holds is checked now and again when the saga settles; the other resources' slots and
    the patient's new time are held by the saga's steps. Until it settles the appointment shows `pendingMove`.
    """
    appointment = _appointment_to_change(session, cmd.appointment_id, cmd.expected_version)
    if appointment.status not in MOVABLE:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"a {appointment.status.value} appointment cannot be rescheduled",
        )
    if appointment.pending_move is not None:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            "the appointment is being moved already",
            {"reason": "move-pending", "sagaId": appointment.pending_move.saga_id},
        )
    patient, now = session.ctx.access.is_patient, session.ctx.now
    _appointment_rules(session, appointment).check_cancellation(appointment.start, now, patient=patient)
    if cmd.new_slot_id == appointment.slot_id:
        raise DomainError(ErrorCode.NEW_SLOT_NOT_AVAILABLE, f"slot {cmd.new_slot_id} is the appointment's own")
    home = token_of(appointment.id)
    additional = _additional(cmd.new_slot_id, cmd.additional_slot_ids)
    period = None
    if token_of(cmd.new_slot_id) == home:  # fail fast on what this partition knows; checked again at the end
        busy = ErrorCode.NEW_SLOT_NOT_AVAILABLE
        new_slot, _, _ = _bookable(
            session, cmd.new_slot_id, allow_double_booking=False, patient=patient, moving=appointment.id, busy=busy
        )
        period = new_slot.period
    steps = _steps(session, home, appointment.patient_id, [cmd.new_slot_id, *additional])
    plan = _plan(
        session,
        intent=Intent.MOVE,
        home=home,
        appointment_id=appointment.id,
        patient_id=appointment.patient_id,
        slot_id=cmd.new_slot_id,
        additional_slot_ids=additional,
        period=period,
        old_period=appointment.period,
        steps=steps,
        by_patient=patient,
    )
    pending = PendingMove(
        saga_id=plan.id, slot_id=plan.slot_id, additional_slot_ids=additional, expires_at=plan.expires_at
    )
    session.save(appointment.model_copy(update={"pending_move": pending}))
    return sagas.start(session, plan)


def move_appointment(session: Session, plan: SagaPlan) -> dict[str, Any]:
    """A move's saga held every other resource: check this resource's new slots again, give back the old ones."""
    appointment = session.get(Appointment, plan.appointment_id, ErrorCode.APPOINTMENT_NOT_FOUND)
    if appointment.pending_move is None or appointment.pending_move.saga_id != plan.id:
        raise DomainError(ErrorCode.NEW_SLOT_NOT_AVAILABLE, "the move was given up", dict(EXPIRED))
    if appointment.status not in MOVABLE:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"the appointment became {appointment.status.value} while it was being moved",
        )
    patient = plan.by_patient
    busy = ErrorCode.NEW_SLOT_NOT_AVAILABLE
    local = [
        _bookable(session, s, allow_double_booking=False, patient=patient, moving=appointment.id, busy=busy)
        for s in (plan.slot_id, *plan.additional_slot_ids)
        if token_of(s) == plan.home
    ]
    target = plan.target
    if token_of(plan.slot_id) == plan.home:
        slot, schedule, _ = local[0]
        target = Target(
            start=slot.start,
            end=slot.end,
            actor=schedule.actor,
            provider_id=schedule.actor.reference,
            location_id=schedule.location_id,
        )
        plan = plan.model_copy(update={"target": target})
    assert target is not None
    freed = _release(session, appointment, patient_time=False)  # the patient's time moves with the confirmation
    moved = appointment.model_copy(
        update={
            "slot_id": plan.slot_id,
            "additional_slot_ids": plan.additional_slot_ids,
            "start": target.start,
            "end": target.end,
            "participants": sagas.pending_participants(appointment, plan),
            "provider_id": target.provider_id or target.actor.reference,
            "location_id": target.location_id,
            "pending_move": None,
            # the reminders sent were for the old time: the new time gets its own
            "reminders_sent": [],
        }
    )
    slot_status = SlotStatus.BUSY_TENTATIVE if appointment.status is S.PROPOSED else SlotStatus.BUSY
    for slot, _, _ in local:
        _hold(session, slot, moved, slot_status)
    saved = session.save(moved)
    session.emit("appointment.updated", saved)
    _offer_to_waitlist(session, freed)
    return saved.dump()


def settle_saga(cmd: c.SettleSaga, session: Session) -> dict[str, Any]:
    finish = create_appointment if cmd.plan.intent is Intent.BOOK else move_appointment
    return sagas.settle(cmd, session, finish)


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
