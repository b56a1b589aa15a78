"""Schedule upkeep: after any change of a schedule, its slots are brought in line with its definition.

One mechanism serves every change (UpdateSchedule, DeactivateSchedule, exceptions added or removed):
`reconcile` walks the changed window day by day and, for each slot of the schedule there, compares what
the slot is with what the definition says it should be:

- a slot should be open when the schedule is active, the slot lies in the planning horizon and in no
  `unavailable` exception, and what opened it still stands: by hand (always), the pattern (the slot is
  one of the pattern's periods, or lies before the pattern's `patternEffectiveFrom`: an earlier pattern
  made it), or an `available` exception (that exception still exists);
- a free slot that should not be open closes (`busy-unavailable`), a closed one that should be open
  frees, the pattern's and the overrides' periods without a slot get one, and the denormalized service
  type and location follow the schedule; each change emits `slot.opened` or `slot.updated`;
- a held slot is never changed: if it should not be open, its appointment is listed in the reply's
  `conflicts` for staff to act on. A voided slot (`entered-in-error`) stays void.

A window of many slots is worked through in parts (SLOTS_PER_DECISION slots each, whole days), each
part a follow-up on the same partition (`schedule.reconcile`); the caller is answered by the last one.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from domain import commands as c
from domain.calendar import Calendar
from domain.decisions import Session
from domain.errors import ErrorCode
from domain.ids import mint, token_of
from domain.model import Appointment, ExceptionKind, Period, Schedule, Slot, SlotStatus
from domain.pattern import expand
from domain.resource import MAX_SPAN

#: slot changes one decision makes before the rest of the window goes to a follow-up
SLOTS_PER_DECISION = 250
PATTERN = "pattern"
AVAILABLE = "available:"


def new_slot(
    schedule: Schedule, period: Period, *, overbooked: bool = False, origin: str | None = None, capacity: int = 1
) -> Slot:
    return Slot(
        id=mint("sl", token_of(schedule.id), schedule.id, period.start.isoformat(), period.end.isoformat()),
        tenant_id=schedule.tenant_id,
        schedule_id=schedule.id,
        start=period.start,
        end=period.end,
        overbooked=overbooked,
        capacity=capacity,
        origin=origin,
        provider_id=schedule.actor.reference,
        location_id=schedule.location_id,
        service_type=schedule.service_type,
    )


def pattern_capacity(schedule: Schedule) -> int:
    return schedule.availability_pattern.capacity if schedule.availability_pattern else 1


def closed(schedule: Schedule | None, slot: Slot) -> bool:
    """The schedule does not take bookings in this slot's time: inactive, outside its horizon, or inside an
    `unavailable` exception (whose later parts may not have closed the slot yet)."""
    if schedule is None:
        return False
    return (
        not schedule.active
        or not schedule.planning_horizon.contains(slot.period)
        or any(e.kind is ExceptionKind.UNAVAILABLE and e.period.overlaps(slot.period) for e in schedule.exceptions)
    )


def still_open(schedule: Schedule | None, slot: Slot) -> bool:
    """Does the schedule's definition keep this slot open now (the upkeep's test, for one slot)?

    Used where a slot is given back outside the upkeep (a cancellation): a slot whose `available` exception
    was removed, or that the current pattern no longer has, does not become free again.
    """
    return schedule is None or should_be_open(schedule, slot, offered(schedule, slot.period))


def offered(schedule: Schedule, window: Period) -> dict[str, tuple[Period, str]]:
    """Slot id -> (period, origin) of the slots the definition opens starting in `window`: the pattern's (from
    its effective date) and the `available` exceptions' (of the pattern's length, else one per exception)."""
    periods: list[tuple[Period, str]] = []
    if not schedule.active:
        return {}
    pattern = schedule.availability_pattern
    if pattern is not None:
        since = max(window.start, schedule.pattern_effective_from or window.start)
        if since < window.end:
            # every period lasts `slotMinutes`: those starting before `window.end` end before this, and which of
            # them overlapping windows keep depends only on the periods starting before them (no wider expansion:
            # a booking asks this for its one slot, and a day's 288 periods cost it ~13 ms)
            wide = Period(start=since, end=window.end + timedelta(minutes=pattern.slot_minutes))
            periods += [(p, PATTERN) for p in expand(pattern, wide) if p.start < window.end]
    for exception in schedule.exceptions:
        if exception.kind is ExceptionKind.AVAILABLE and exception.id is not None:
            length = (
                timedelta(minutes=pattern.slot_minutes) if pattern else min(exception.end - exception.start, MAX_SPAN)
            )
            start = exception.start
            while start + length <= exception.end:
                if window.start <= start < window.end:
                    periods.append((Period(start=start, end=start + length), AVAILABLE + exception.id))
                start += length
    out: dict[str, tuple[Period, str]] = {}
    for period, origin in periods:
        slot = new_slot(schedule, period, origin=origin)
        if not closed(schedule, slot) and slot.id not in out:  # the capacity does not change the id
            out[slot.id] = (period, origin)
    return out


def should_be_open(schedule: Schedule, slot: Slot, offered_ids: dict[str, tuple[Period, str]]) -> bool:
    if closed(schedule, slot):
        return False
    if slot.origin is None:
        return True
    if slot.origin.startswith(AVAILABLE):
        return slot.id in offered_ids
    effective = schedule.pattern_effective_from
    return slot.id in offered_ids or (effective is not None and slot.start < effective)


def conflict(appointment: Appointment) -> dict[str, Any]:
    """What staff need to act on a booking the change left outside the schedule; small, as thousands may be
    listed."""
    keep = ("id", "status", "slotId", "start", "end", "patientId", "version")
    data = appointment.dump()
    return {k: data[k] for k in keep}


def reconcile(
    session: Session, schedule: Schedule, window: Period, resume_at: datetime | None, reply: dict[str, Any]
) -> dict[str, Any]:
    """Bring the slots overlapping `window` (those starting from `resume_at` on) in line with `schedule`; see
    the module doc."""
    calendar = Calendar(session, token_of(schedule.id))
    conflicts = list(reply.get("conflicts", []))
    start = resume_at or window.start - MAX_SPAN  # a slot overlapping the window starts at most MAX_SPAN before
    day = datetime.combine(start.date(), time(), tzinfo=start.tzinfo)
    changed = 0
    while day < window.end:
        part = Period(start=max(day, start), end=min(day + timedelta(days=1), window.end))
        day += timedelta(days=1)
        if part.end <= part.start:
            continue
        changed += _reconcile_day(session, schedule, calendar, part, window, conflicts)
        if changed >= SLOTS_PER_DECISION and day < window.end:
            rest = {"scheduleId": schedule.id, "start": window.start.isoformat(), "end": window.end.isoformat(),
                    "resumeAt": day.isoformat(), "reply": {**reply, "conflicts": conflicts}}  # fmt: skip
            session.follow_up(token_of(schedule.id), c.ReconcileSchedule.NAME, rest, carries_reply=True)
            break
    return {**reply, "conflicts": conflicts}


def _reconcile_day(
    session: Session,
    schedule: Schedule,
    calendar: Calendar,
    part: Period,
    window: Period,
    conflicts: list[dict[str, Any]],
) -> int:
    """The slots starting in `part` (one day or less) that overlap `window`."""
    wanted = {sid: (p, origin) for sid, (p, origin) in offered(schedule, part).items() if p.overlaps(window)}
    existing = [
        slot
        for sid, ref in sorted(
            calendar.day_slots(part.start.date()).items(),
            key=lambda item: (item[1].start, item[0]),
        )
        if ref.schedule_id == schedule.id and part.start <= ref.start < part.end and ref.period.overlaps(window)
        if (slot := session.find(Slot, sid)) is not None
    ]
    changed = 0
    for slot in existing:
        if slot.status is SlotStatus.ENTERED_IN_ERROR:
            continue
        open_ = should_be_open(schedule, slot, wanted)
        update: dict[str, Any] = {}
        if (slot.service_type, slot.location_id) != (schedule.service_type, schedule.location_id):
            update |= {"service_type": schedule.service_type, "location_id": schedule.location_id}
        if not open_:
            held = (session.find(Appointment, holder) for holder in calendar.holders(slot))
            conflicts += [conflict(appointment) for appointment in held if appointment is not None]
        if slot.status is SlotStatus.FREE and not open_:  # its free seats close; the taken ones stay
            update["status"] = SlotStatus.BUSY_UNAVAILABLE
        elif slot.status is SlotStatus.BUSY_UNAVAILABLE and open_ and slot.booked < slot.capacity:
            update["status"] = SlotStatus.FREE
        if update:
            session.emit("slot.updated", session.save(slot.model_copy(update=update)))
            changed += 1
    taken = [s.period for s in existing if s.status is not SlotStatus.ENTERED_IN_ERROR]
    for slot_id, (period, origin) in wanted.items():
        if session.exists("slot", slot_id) or any(period.overlaps(p) for p in taken):
            continue
        slot = session.save(new_slot(schedule, period, origin=origin, capacity=pattern_capacity(schedule)))
        calendar.add_slot(slot)
        session.emit("slot.opened", slot)
        taken.append(period)
        changed += 1
    return changed


def reconcile_part(cmd: c.ReconcileSchedule, session: Session) -> dict[str, Any]:
    """Internal: the next part of a window, on the schedule's partition."""
    schedule = session.get(Schedule, cmd.schedule_id, ErrorCode.SCHEDULE_NOT_FOUND)
    return reconcile(session, schedule, Period(start=cmd.start, end=cmd.end), cmd.resume_at, cmd.reply)
