"""The write use cases of the seed, as pure decisions.

Each handler takes a command and a `Session` and either returns the reply
data or raises `DomainError`; `decide` turns the latter into a refusal that
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from domain import commands as c
from domain.calendar import Calendar
from domain.decisions import (
    ADMIN,
    DOUBLE_BOOK,
    WRITE,
    Context,
    Decision,
    Session,
    State,
)
from domain.errors import DomainError, ErrorCode, pydantic_details, validation_error
from domain.ids import mint, resource_token, token_of
from domain.model import (
    RESOURCE_ACTOR_TYPES,
    Actor,
    ActorType,
    Appointment,
    Participant,
    Period,
    Schedule,
    ScheduleException,
    Slot,
    SlotStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from domain.pattern import PatternTooLarge, expand
from domain.resource import MAX_SPAN, ResourceIndex
from domain.status import AppointmentStatus, can_transition

S = AppointmentStatus
#: Statuses that give the slot and the resource's time back.
RELEASING = frozenset({S.CANCELLED, S.NOSHOW, S.ENTERED_IN_ERROR})


def command_token(command: c.Command, tenant: str) -> str:
    """The routing key of a command: the token of the resource it concerns."""
    match command:
        case c.BookAppointment(slot_id=sid) | c.CreateSlot(schedule_id=sid) | c.AddScheduleException(schedule_id=sid):
            return token_of(sid)
        case (
            c.RescheduleAppointment(appointment_id=aid)
            | c.UpdateAppointmentStatus(appointment_id=aid)
            | c.CancelAppointment(appointment_id=aid)
            | c.CheckInPatient(appointment_id=aid)
            | c.MarkReminderSent(appointment_id=aid)
        ):
            return token_of(aid)
        case c.CreateSchedule(actor=actor):
            return resource_token(tenant, actor.reference)
        case c.AddToWaitlist(provider_id=provider):
            return resource_token(tenant, provider or "*")
        case c.FulfillWaitlistEntry(entry_id=eid) | c.CompleteWaitlistFulfilment(entry_id=eid):
            return token_of(eid)
        case c.VerifyWaitlistAppointment(appointment_id=aid):
            return token_of(aid)
        case c.OfferSlotToWaitlist():
            return resource_token(tenant, "*")
        case c.OpenScheduleSlots(schedule_id=sid) | c.ApplyScheduleException(schedule_id=sid):
            return token_of(sid)
        case c.BridgePortalAppointment(slot_id=sid, provider_id=provider):
            return token_of(sid) if sid else resource_token(tenant, provider or "*")
    return resource_token(tenant, "*")


def decide(command: c.Command, state: State, ctx: Context) -> Decision:
    session = Session(state, ctx)
    handler = HANDLERS.get(type(command))
    try:
        if handler is None:
            raise validation_error([{"field": "type", "message": f"{command.NAME} is not decided here"}])
        data = handler(command, session)
    except DomainError as error:
        return Decision(error=error)
    except ValidationError as exc:
        # A valid command can still break an entity's constraint (a 200-character patientId makes a
        # 208-character participant reference): refuse it instead of raising out of the decision.
        return Decision(error=validation_error(pydantic_details(exc)))
    return session.decision(data)


# --- helpers -------------------------------------------------------------------------------


def _check_version(entity: Appointment | Slot, expected: int | None) -> None:
    if expected is not None and expected != entity.version:
        raise DomainError(
            ErrorCode.OPTIMISTIC_LOCK_CONFLICT,
            f"expected version {expected}, current version is {entity.version}",
            {"expectedVersion": expected, "currentVersion": entity.version},
        )


def _appointment_to_change(session: Session, appointment_id: str, expected_version: int | None) -> Appointment:
    """The appointment a modifying command names, once scope, patient and optimistic lock allow the change."""
    session.ctx.require_scope(WRITE)
    appointment = session.get(Appointment, appointment_id, ErrorCode.APPOINTMENT_NOT_FOUND)
    _check_patient(session, appointment.patient_id)
    _check_version(appointment, expected_version)
    return appointment


def _check_patient(session: Session, patient_id: str) -> None:
    """A patient token acts only for its own patient."""
    own = session.ctx.patient_id
    if own is not None and own != patient_id:
        raise DomainError(ErrorCode.FORBIDDEN, "a patient token may act only for its own patient")


def _in_exception(session: Session, slot: Slot) -> bool:
    schedule = session.find(Schedule, slot.schedule_id)
    return schedule is not None and any(
        Period(start=e.start, end=e.end).overlaps(slot.period) for e in schedule.exceptions
    )


def _hold(session: Session, slot: Slot, appointment: Appointment, status: SlotStatus) -> None:
    session.save(slot.model_copy(update={"status": status}))
    Calendar(session, token_of(slot.id)).hold(slot, appointment)


def _release(session: Session, appointment: Appointment) -> Slot | None:
    """Give the appointment's slot and time back; the slot stays unavailable inside an exception.

    Returns the slot if it became free.
    """
    slot = session.find(Slot, appointment.slot_id)
    if not Calendar(session, token_of(appointment.id)).release(slot, appointment) or slot is None:
        return None
    status = SlotStatus.BUSY_UNAVAILABLE if _in_exception(session, slot) else SlotStatus.FREE
    saved = session.save(slot.model_copy(update={"status": status}))
    return saved if status is SlotStatus.FREE else None


def _matches(entry: WaitlistEntry, slot: Slot) -> bool:
    return (
        entry.status is WaitlistStatus.WAITING
        and entry.provider_id in (None, slot.provider_id)
        and entry.location_id in (None, slot.location_id)
        and entry.service_type == slot.service_type
        and entry.requested_period.contains(slot.period)
    )


def _offer_to_waitlist(session: Session, slot: Slot | None) -> None:
    """Tell the best matching waiting entry (priority, then age) that the slot is free. Books nothing.

    Entries for this provider are asked first; if none matches, the entries for any provider
    (kept by the tenant-wide actor on another partition) are asked by a follow-up command.
    """
    if slot is None or slot.start <= session.ctx.now:  # a slot in the past is no offer
        return
    if not _offer_best(session, session.index(token_of(slot.id)), slot):
        session.follow_up(resource_token(session.ctx.tenant, "*"), c.OfferSlotToWaitlist.NAME, {"slot": slot.dump()})


def offer_slot(cmd: c.OfferSlotToWaitlist, session: Session) -> dict[str, Any]:
    if cmd.slot.tenant_id != session.ctx.tenant:
        raise DomainError(ErrorCode.SLOT_NOT_FOUND, f"slot {cmd.slot.id} not found")
    offered = _offer_best(session, session.index(resource_token(session.ctx.tenant, "*")), cmd.slot)
    return {"slotId": cmd.slot.id, "offered": offered}


def _offer_best(session: Session, index: ResourceIndex, slot: Slot) -> bool:
    candidates = [e for eid in index.waitlist if (e := session.find(WaitlistEntry, eid)) and _matches(e, slot)]
    if not candidates:
        return False
    best = min(candidates, key=lambda e: (-e.priority, e.created_at, e.id))
    offered = session.save(best.model_copy(update={"status": WaitlistStatus.OFFERED, "offered_slot_id": slot.id}))
    session.emit("waitlist.slot-available", offered, {"slot": slot.dump()})
    return True


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
    if _in_exception(session, slot):  # an exception whose later parts have not closed this slot yet
        raise DomainError(ErrorCode.SLOT_NOT_AVAILABLE, f"slot {slot.id} lies inside a schedule exception")
    schedule = session.get(Schedule, slot.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    token = token_of(slot.id)
    overlapping = Calendar(session, token).overlapping_appointments(slot.period)
    if overlapping and not allow_double_booking:
        raise DomainError(
            ErrorCode.DOUBLE_BOOKING_DETECTED,
            f"{schedule.actor.reference} already has an appointment overlapping this slot",
            {"appointmentIds": overlapping},
        )
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


# --- appointments ---------------------------------------------------------------------------


def book(cmd: c.BookAppointment, session: Session) -> dict[str, Any]:
    session.ctx.require_scope(WRITE)
    if cmd.allow_double_booking and DOUBLE_BOOK not in session.ctx.scopes and ADMIN not in session.ctx.scopes:
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
    session.ctx.require_scope(WRITE)
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
    new_slot = session.get(Slot, cmd.new_slot_id, ErrorCode.SLOT_NOT_FOUND)
    if new_slot.id == appointment.slot_id or new_slot.status is not SlotStatus.FREE:
        raise DomainError(ErrorCode.NEW_SLOT_NOT_AVAILABLE, f"slot {new_slot.id} is not free")
    if _in_exception(session, new_slot):
        raise DomainError(ErrorCode.NEW_SLOT_NOT_AVAILABLE, f"slot {new_slot.id} lies inside a schedule exception")
    overlapping = Calendar(session, token).overlapping_appointments(new_slot.period, excluding=appointment.id)
    if overlapping:
        raise DomainError(
            ErrorCode.DOUBLE_BOOKING_DETECTED,
            "the resource is booked at that time",
            {"appointmentIds": overlapping},
        )
    slot_status = SlotStatus.BUSY_TENTATIVE if appointment.status is S.PROPOSED else SlotStatus.BUSY
    moved = appointment.model_copy(update={"slot_id": new_slot.id, "start": new_slot.start, "end": new_slot.end})
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


def update_status(cmd: c.UpdateAppointmentStatus, session: Session) -> dict[str, Any]:
    appointment = _appointment_to_change(session, cmd.appointment_id, cmd.expected_version)
    saved = _transition(session, appointment, cmd.status, f"appointment.{cmd.status.value}")
    return saved.dump()


def cancel(cmd: c.CancelAppointment, session: Session) -> dict[str, Any]:
    appointment = _appointment_to_change(session, cmd.appointment_id, cmd.expected_version)
    saved = _transition(session, appointment, S.CANCELLED, "appointment.cancelled", cmd.reason)
    return saved.dump()


def check_in(cmd: c.CheckInPatient, session: Session) -> dict[str, Any]:
    appointment = _appointment_to_change(session, cmd.appointment_id, cmd.expected_version)
    saved = _transition(session, appointment, S.CHECKED_IN, "checkin.completed")
    return saved.dump()


# --- schedules and slots ----------------------------------------------------------------------


def create_schedule(cmd: c.CreateSchedule, session: Session) -> dict[str, Any]:
    session.ctx.require_scope(WRITE)
    if cmd.actor.type not in RESOURCE_ACTOR_TYPES:
        raise validation_error(
            [
                {
                    "field": "actor.type",
                    "message": "must be Practitioner, Location, Device or HealthcareService",
                }
            ]
        )
    tenant = session.ctx.tenant
    token = resource_token(tenant, cmd.actor.reference)
    schedule = Schedule(
        id=mint("sc", token, tenant, session.ctx.command_id),
        tenant_id=tenant,
        actor=cmd.actor,
        location_id=cmd.location_id,
        service_type=cmd.service_type,
        planning_horizon=cmd.planning_horizon,
        availability_pattern=cmd.availability_pattern,
    )
    periods: list[Period] = []
    if cmd.availability_pattern is not None:
        try:
            periods = expand(cmd.availability_pattern, cmd.planning_horizon)
        except PatternTooLarge as exc:
            raise validation_error([{"field": "availabilityPattern", "message": str(exc)}]) from None
    saved = session.save(schedule)
    session.emit("schedule.published", saved)
    reply = {**saved.dump(), "slotCount": len(periods)}
    return _open_slots(session, saved, periods, reply)


#: Slots opened by one decision; a longer pattern is opened in parts, each its own small decision.
SLOTS_PER_DECISION = 250


def _open_slots(session: Session, schedule: Schedule, periods: list[Period], reply: dict[str, Any]) -> dict[str, Any]:
    """Open up to SLOTS_PER_DECISION slots; the rest by a follow-up on the same partition, which answers."""
    calendar = Calendar(session, token_of(schedule.id))
    for period in periods[:SLOTS_PER_DECISION]:
        slot = _new_slot(schedule, period, overbooked=False)
        if session.exists("slot", slot.id):  # a part decided again after a redelivery
            continue
        if _in_exception(session, slot):
            slot = slot.model_copy(update={"status": SlotStatus.BUSY_UNAVAILABLE})
        saved = session.save(slot)
        calendar.add_slot(saved)
        session.emit("slot.opened", saved)
    if len(periods) <= SLOTS_PER_DECISION:
        return reply
    rest = periods[SLOTS_PER_DECISION]
    body = {"scheduleId": schedule.id, "start": rest.start.isoformat(), "reply": reply}
    session.follow_up(token_of(schedule.id), c.OpenScheduleSlots.NAME, body, carries_reply=True)
    return reply


def open_schedule_slots(cmd: c.OpenScheduleSlots, session: Session) -> dict[str, Any]:
    session.ctx.require_scope(WRITE)
    schedule = session.get(Schedule, cmd.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    if schedule.availability_pattern is None or cmd.start >= schedule.planning_horizon.end:
        return cmd.reply
    within = Period(start=cmd.start, end=schedule.planning_horizon.end)
    return _open_slots(session, schedule, expand(schedule.availability_pattern, within), cmd.reply)


def _new_slot(schedule: Schedule, period: Period, *, overbooked: bool) -> Slot:
    return Slot(
        id=mint(
            "sl",
            token_of(schedule.id),
            schedule.id,
            period.start.isoformat(),
            period.end.isoformat(),
        ),
        tenant_id=schedule.tenant_id,
        schedule_id=schedule.id,
        start=period.start,
        end=period.end,
        overbooked=overbooked,
        provider_id=schedule.actor.reference,
        location_id=schedule.location_id,
        service_type=schedule.service_type,
    )


def create_slot(cmd: c.CreateSlot, session: Session) -> dict[str, Any]:
    session.ctx.require_scope(WRITE)
    schedule = session.get(Schedule, cmd.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    period = Period(start=cmd.start, end=cmd.end)
    if not schedule.planning_horizon.contains(period):
        raise validation_error(
            [
                {
                    "field": "start",
                    "message": "the slot lies outside the schedule's planning horizon",
                }
            ]
        )
    if period.end - period.start > MAX_SPAN:
        raise validation_error([{"field": "end", "message": "a slot lasts at most 24 hours"}])
    calendar = Calendar(session, token_of(schedule.id))
    clash = [
        sid
        for sid, _ in calendar.slots(period, schedule.id)
        if (s := session.find(Slot, sid)) is not None and s.status is not SlotStatus.ENTERED_IN_ERROR
    ]
    if clash:
        raise validation_error(
            [
                {
                    "field": "start",
                    "message": f"overlaps slot {clash[0]} of this schedule",
                }
            ]
        )
    slot = _new_slot(schedule, period, overbooked=cmd.overbooked)
    if _in_exception(session, slot):
        slot = slot.model_copy(update={"status": SlotStatus.BUSY_UNAVAILABLE})
    saved = session.save(slot)
    calendar.add_slot(saved)
    session.emit("slot.opened", saved)
    return saved.dump()


#: exceptions one schedule may hold: each is carried in every record of the schedule
MAX_EXCEPTIONS = 500


def add_exception(cmd: c.AddScheduleException, session: Session) -> dict[str, Any]:
    session.ctx.require_scope(WRITE)
    schedule = session.get(Schedule, cmd.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    horizon = schedule.planning_horizon
    if cmd.end <= horizon.start or cmd.start >= horizon.end:
        field = "end" if cmd.end <= horizon.start else "start"
        raise validation_error([{"field": field, "message": "the exception must overlap the planning horizon"}])
    if len(schedule.exceptions) >= MAX_EXCEPTIONS:
        raise validation_error(
            [{"field": "scheduleId", "message": f"a schedule holds at most {MAX_EXCEPTIONS} exceptions"}]
        )
    exception = ScheduleException(start=cmd.start, end=cmd.end, reason=cmd.reason)
    saved = session.save(schedule.model_copy(update={"exceptions": [*schedule.exceptions, exception]}))
    period = Period(start=cmd.start, end=cmd.end)
    return _close_slots(session, saved, period, None, {**saved.dump(), "conflicts": []})


def _conflict(appointment: Appointment) -> dict[str, Any]:
    """What staff need to act on a booking inside an exception; small, as thousands may be listed."""
    keep = ("id", "status", "slotId", "start", "end", "patientId", "version")
    data = appointment.dump()
    return {k: data[k] for k in keep}


def apply_exception(cmd: c.ApplyScheduleException, session: Session) -> dict[str, Any]:
    session.ctx.require_scope(WRITE)
    schedule = session.get(Schedule, cmd.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    return _close_slots(session, schedule, Period(start=cmd.start, end=cmd.end), cmd.resume_at, cmd.reply)


def _close_slots(
    session: Session, schedule: Schedule, period: Period, resume_at: datetime | None, reply: dict[str, Any]
) -> dict[str, Any]:
    """Free slots inside the exception become busy-unavailable; held ones are listed, never cancelled.

    At most SLOTS_PER_DECISION slots per decision; a follow-up (answering the caller) does the rest.
    """
    calendar = Calendar(session, token_of(schedule.id))
    conflicts = list(reply["conflicts"])
    inside = [
        (sid, ref) for sid, ref in calendar.slots(period, schedule.id) if resume_at is None or ref.start >= resume_at
    ]
    for sid, _ in inside[:SLOTS_PER_DECISION]:
        slot = session.find(Slot, sid)
        if slot is None:
            continue
        if slot.status is SlotStatus.FREE:
            session.save(slot.model_copy(update={"status": SlotStatus.BUSY_UNAVAILABLE}))
        elif (holder := calendar.holder(slot)) and (appointment := session.find(Appointment, holder)):
            conflicts.append(_conflict(appointment))
    reply = {**reply, "conflicts": conflicts}
    if len(inside) > SLOTS_PER_DECISION:
        body = {
            "scheduleId": schedule.id,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "resumeAt": inside[SLOTS_PER_DECISION][1].start.isoformat(),
            "reply": reply,
        }
        session.follow_up(token_of(schedule.id), c.ApplyScheduleException.NAME, body, carries_reply=True)
    return reply


# --- waitlist ---------------------------------------------------------------------------------


def add_to_waitlist(cmd: c.AddToWaitlist, session: Session) -> dict[str, Any]:
    session.ctx.require_scope(WRITE)
    _check_patient(session, cmd.patient_id)
    tenant = session.ctx.tenant
    token = resource_token(tenant, cmd.provider_id or "*")
    entry = WaitlistEntry(
        id=mint("wl", token, tenant, session.ctx.command_id),
        tenant_id=tenant,
        patient_id=cmd.patient_id,
        provider_id=cmd.provider_id,
        location_id=cmd.location_id,
        service_type=cmd.service_type,
        requested_period=cmd.requested_period,
        priority=cmd.priority,
        created_at=session.ctx.now,
    )
    saved = session.save(entry)
    index = session.index(token)
    session.save_index(index.model_copy(update={"waitlist": [*index.waitlist, entry.id]}))
    return saved.dump()


def fulfill_waitlist(cmd: c.FulfillWaitlistEntry, session: Session) -> dict[str, Any]:
    """Fulfil an entry with an appointment of its patient, verified where the appointment lives.

    An appointment of another resource lives on another partition: it is checked there (tenant,
    existence, patient) by a follow-up command, which hands the fulfilment back to this entry's
    partition; the caller is answered by the last step, with its refusal or the fulfilled entry.
    """
    session.ctx.require_scope(WRITE)
    entry = _fulfillable(session, cmd.entry_id)
    _check_patient(session, entry.patient_id)
    if token_of(cmd.appointment_id) != token_of(entry.id):
        body = {"entryId": entry.id, "appointmentId": cmd.appointment_id, "patientId": entry.patient_id}
        session.follow_up(token_of(cmd.appointment_id), c.VerifyWaitlistAppointment.NAME, body, carries_reply=True)
        return entry.dump()
    _check_appointment_of(session, cmd.appointment_id, entry.patient_id)
    return _fulfil(session, entry, cmd.appointment_id)


def verify_waitlist_appointment(cmd: c.VerifyWaitlistAppointment, session: Session) -> dict[str, Any]:
    """Internal, on the appointment's partition: the appointment exists for this tenant and this patient."""
    _check_appointment_of(session, cmd.appointment_id, cmd.patient_id)
    body = {"entryId": cmd.entry_id, "appointmentId": cmd.appointment_id}
    session.follow_up(token_of(cmd.entry_id), c.CompleteWaitlistFulfilment.NAME, body, carries_reply=True)
    return {"entryId": cmd.entry_id, "appointmentId": cmd.appointment_id}


def complete_waitlist_fulfilment(cmd: c.CompleteWaitlistFulfilment, session: Session) -> dict[str, Any]:
    """Internal, back on the entry's partition: the appointment was verified; the entry may have moved on since."""
    return _fulfil(session, _fulfillable(session, cmd.entry_id), cmd.appointment_id)


def _fulfillable(session: Session, entry_id: str) -> WaitlistEntry:
    entry = session.get(WaitlistEntry, entry_id, ErrorCode.WAITLIST_ENTRY_NOT_FOUND)
    if entry.status not in {WaitlistStatus.WAITING, WaitlistStatus.OFFERED}:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"a {entry.status.value} waitlist entry cannot be fulfilled",
        )
    return entry


def _check_appointment_of(session: Session, appointment_id: str, patient_id: str) -> None:
    appointment = session.get(Appointment, appointment_id, ErrorCode.APPOINTMENT_NOT_FOUND)
    if appointment.patient_id != patient_id:
        raise validation_error([{"field": "appointmentId", "message": "the appointment is for another patient"}])


def _fulfil(session: Session, entry: WaitlistEntry, appointment_id: str) -> dict[str, Any]:
    saved = session.save(
        entry.model_copy(update={"status": WaitlistStatus.FULFILLED, "appointment_id": appointment_id})
    )
    index = session.index(token_of(entry.id))
    session.save_index(index.model_copy(update={"waitlist": [w for w in index.waitlist if w != entry.id]}))
    session.emit("waitlist.fulfilled", saved)
    return saved.dump()


# --- reminders ----------------------------------------------------------------------------------


def reminder_sent(cmd: c.MarkReminderSent, session: Session) -> dict[str, Any]:
    """Record an acknowledged reminder hand-off; a second one for the same lead changes nothing."""
    appointment = session.get(Appointment, cmd.appointment_id, ErrorCode.APPOINTMENT_NOT_FOUND)
    if cmd.lead_minutes in appointment.reminders_sent:
        return appointment.dump()
    saved = session.save(
        appointment.model_copy(update={"reminders_sent": sorted({*appointment.reminders_sent, cmd.lead_minutes})})
    )
    remind_at = appointment.start - timedelta(minutes=cmd.lead_minutes)
    session.emit(
        "appointment.reminder.sent", saved, {"leadMinutes": cmd.lead_minutes, "remindAt": remind_at.isoformat()}
    )
    return saved.dump()


HANDLERS: dict[type[c.Command], Callable[[Any, Session], dict[str, Any]]] = {
    c.BookAppointment: book,
    c.BridgePortalAppointment: portal_request,
    c.RescheduleAppointment: reschedule,
    c.UpdateAppointmentStatus: update_status,
    c.CancelAppointment: cancel,
    c.CheckInPatient: check_in,
    c.CreateSchedule: create_schedule,
    c.CreateSlot: create_slot,
    c.AddScheduleException: add_exception,
    c.AddToWaitlist: add_to_waitlist,
    c.FulfillWaitlistEntry: fulfill_waitlist,
    c.VerifyWaitlistAppointment: verify_waitlist_appointment,
    c.CompleteWaitlistFulfilment: complete_waitlist_fulfilment,
    c.MarkReminderSent: reminder_sent,
    c.OfferSlotToWaitlist: offer_slot,
    c.OpenScheduleSlots: open_schedule_slots,
    c.ApplyScheduleException: apply_exception,
}
