"""Use cases of schedules and their slots: publishing a schedule and opening its pattern's slots, adding a slot,
changing a schedule (update, deactivation, exceptions added or removed) and voiding a slot.

Every change of a schedule is followed by its upkeep (`domain/usecases/upkeep.py`): the slots of the changed
window are brought in line with the new definition, in parts; held appointments are never touched.
"""

from __future__ import annotations

from typing import Any

from domain import commands as c
from domain.calendar import Calendar
from domain.decisions import Session
from domain.errors import DomainError, ErrorCode, validation_error
from domain.ids import mint, resource_token, token_of
from domain.model import (
    RESOURCE_ACTOR_TYPES,
    BookingPolicy,
    Period,
    Schedule,
    ScheduleException,
    Slot,
    SlotStatus,
)
from domain.pattern import PatternTooLarge, expand
from domain.resource import MAX_SPAN
from domain.usecases.common import _check_version
from domain.usecases.upkeep import PATTERN, SLOTS_PER_DECISION, closed, new_slot, pattern_capacity, reconcile


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


def _open_slots(session: Session, schedule: Schedule, periods: list[Period], reply: dict[str, Any]) -> dict[str, Any]:
    """Open up to SLOTS_PER_DECISION slots; the rest by a follow-up on the same partition, which answers."""
    calendar = Calendar(session, token_of(schedule.id))
    for period in periods[:SLOTS_PER_DECISION]:
        slot = new_slot(schedule, period, origin=PATTERN, capacity=pattern_capacity(schedule))
        if session.exists("slot", slot.id):  # a part decided again after a redelivery
            continue
        if closed(schedule, slot):
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
    slot = new_slot(schedule, period, overbooked=cmd.overbooked, capacity=cmd.capacity)
    if closed(schedule, slot):
        slot = slot.model_copy(update={"status": SlotStatus.BUSY_UNAVAILABLE})
    saved = session.save(slot)
    calendar.add_slot(saved)
    session.emit("slot.opened", saved)
    return saved.dump()


#: exceptions one schedule may hold: each is carried in every record of the schedule
MAX_EXCEPTIONS = 500


def _changed(session: Session, schedule: Schedule, window: Period) -> dict[str, Any]:
    """Save the changed schedule, tell event consumers, and bring the window's slots in line (in parts)."""
    saved = session.save(schedule)
    session.emit("schedule.updated", saved)
    return reconcile(session, saved, window, None, {**saved.dump(), "conflicts": []})


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
    exception = ScheduleException(
        id=mint("ex", token_of(schedule.id), schedule.id, session.ctx.command_id),
        kind=cmd.kind,
        start=cmd.start,
        end=cmd.end,
        reason=cmd.reason,
    )
    saved = session.save(schedule.model_copy(update={"exceptions": [*schedule.exceptions, exception]}))
    reply = {**saved.dump(), "conflicts": [], "exceptionId": exception.id, "exception": exception.dump()}
    return reconcile(session, saved, exception.period, None, reply)


def remove_exception(cmd: c.RemoveScheduleException, session: Session) -> dict[str, Any]:
    """The exception goes; the slots it closed open again unless another exception still closes them, and the
    slots it opened (an `available` one) close unless held."""
    schedule = session.get(Schedule, cmd.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    removed = next((e for e in schedule.exceptions if e.id == cmd.exception_id), None)
    if removed is None:
        raise validation_error([{"field": "exceptionId", "message": "the schedule has no exception with this id"}])
    kept = [e for e in schedule.exceptions if e.id != cmd.exception_id]
    return _changed(session, schedule.model_copy(update={"exceptions": kept}), removed.period)


def update_schedule(cmd: c.UpdateSchedule, session: Session) -> dict[str, Any]:
    schedule = session.get(Schedule, cmd.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    _check_version(schedule, cmd.expected_version)
    fields = cmd.model_dump(exclude_unset=True, exclude={"schedule_id", "expected_version", "pattern_effective_from"})
    update: dict[str, Any] = {name: getattr(cmd, name) for name in fields}
    if cmd.availability_pattern is not None:
        update["pattern_effective_from"] = cmd.pattern_effective_from or session.ctx.now
    elif cmd.pattern_effective_from is not None:
        raise validation_error([{"field": "patternEffectiveFrom", "message": "only with a new availabilityPattern"}])
    changed = schedule.model_copy(update=update)
    old, new = schedule.planning_horizon, changed.planning_horizon
    start, end = min(old.start, new.start), max(old.end, new.end)
    if set(update) <= {"availability_pattern", "pattern_effective_from", "booking_policy"}:
        start = max(update.get("pattern_effective_from", end), new.start)  # only the new pattern's days change
    if start >= end:  # nothing about slots changed
        saved = session.save(changed)
        session.emit("schedule.updated", saved)
        return {**saved.dump(), "conflicts": []}
    window = Period(start=start, end=end)
    if changed.availability_pattern is not None:
        try:
            expand(changed.availability_pattern, window)
        except PatternTooLarge as exc:
            raise validation_error([{"field": "availabilityPattern", "message": str(exc)}]) from None
    return _changed(session, changed, window)


def deactivate_schedule(cmd: c.DeactivateSchedule, session: Session) -> dict[str, Any]:
    """Nothing new can be booked on it: its free slots close; held appointments are listed, never cancelled."""
    schedule = session.get(Schedule, cmd.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    _check_version(schedule, cmd.expected_version)
    return _changed(session, schedule.model_copy(update={"active": False}), schedule.planning_horizon)


def void_slot(cmd: c.VoidSlot, session: Session) -> dict[str, Any]:
    """A slot made by mistake becomes `entered-in-error`; a held one is refused with its appointments."""
    slot = session.get(Slot, cmd.slot_id, ErrorCode.SLOT_NOT_FOUND)
    if slot.status is SlotStatus.ENTERED_IN_ERROR:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION, f"slot {slot.id} is already void", {"from": slot.status.value}
        )
    holders = Calendar(session, token_of(slot.id)).holders(slot)
    if holders:
        raise DomainError(
            ErrorCode.SLOT_NOT_AVAILABLE, f"slot {slot.id} is held; cancel or move its appointments first",
            {"appointmentIds": holders},
        )  # fmt: skip
    saved = session.save(slot.model_copy(update={"status": SlotStatus.ENTERED_IN_ERROR}))
    session.emit("slot.updated", saved, {"reason": cmd.reason} if cmd.reason else None)
    return saved.dump()
