"""Use cases of schedules and their slots: publishing a schedule, opening its slots, adding a slot and closing slots
for an exception. Long patterns and wide exceptions are worked through in parts, one small decision each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain import commands as c
from domain.calendar import Calendar
from domain.decisions import Session
from domain.errors import ErrorCode, validation_error
from domain.ids import mint, resource_token, token_of
from domain.model import (
    RESOURCE_ACTOR_TYPES,
    Appointment,
    BookingPolicy,
    Period,
    Schedule,
    ScheduleException,
    Slot,
    SlotStatus,
)
from domain.pattern import PatternTooLarge, expand
from domain.resource import MAX_SPAN
from domain.usecases.common import _in_exception


def create_schedule(cmd: c.CreateSchedule, session: Session) -> dict[str, Any]:
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
        booking_policy=cmd.booking_policy or BookingPolicy(),
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
