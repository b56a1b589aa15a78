"""Which reminders are due: a booked appointment that has entered one of its lead times.

Only the shortest lead whose window has opened is due: a booking made two
hours ahead gets the 2-hour reminder, not a belated 24-hour one. A reminder
whose window opened while the service was down is sent at the next dispatch
(catch-up), once; none is sent after the appointment started.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from domain.model import Appointment
from domain.status import AppointmentStatus


def due_lead(appointment: Appointment, now: datetime, leads_minutes: Iterable[int]) -> int | None:
    if appointment.status is not AppointmentStatus.BOOKED or appointment.start <= now:
        return None
    opened = [lead for lead in leads_minutes if appointment.start - timedelta(minutes=lead) <= now]
    if not opened:
        return None
    lead = min(opened)
    return None if lead in appointment.reminders_sent else lead


def reminder_key(appointment: Appointment, lead_minutes: int) -> str:
    """One reminder: of this appointment, at this start time, this lead. A reschedule makes new keys, so the
    new time's reminders are not taken for repeats of the old time's (hand-off ids, idempotency keys)."""
    return f"{appointment.id}-{appointment.start:%Y%m%dT%H%M%SZ}-{lead_minutes}"


def due(appointments: Iterable[tuple[Appointment, Iterable[int]]], now: datetime) -> list[tuple[Appointment, int]]:
    """(appointment, lead) pairs to hand off now, soonest appointment first; each appointment with the lead
    times of its schedule."""
    found = [(a, lead) for a, leads in appointments if (lead := due_lead(a, now, leads)) is not None]
    found.sort(key=lambda pair: (pair[0].start, pair[0].id))
    return found
