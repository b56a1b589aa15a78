"""Use case of reminders: recording that a reminder was handed off, once per lead time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain import commands as c
from domain.decisions import Session
from domain.errors import ErrorCode
from domain.model import Appointment


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
