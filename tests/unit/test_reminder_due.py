"""Which reminders are due (domain/reminders.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.model import Appointment
from domain.reminders import due, due_lead
from domain.status import AppointmentStatus

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
LEADS = (1440, 120)


def _appointment(
    status: AppointmentStatus = AppointmentStatus.BOOKED, sent: list[int] | None = None, **kw: object
) -> Appointment:
    return Appointment.model_validate(
        {
            "id": kw.get("id", "ap-1"),
            "tenantId": "t1",
            "status": status,
            "slotId": "sl-1",
            "start": kw.get("start", START),
            "end": kw.get("start", START) + timedelta(minutes=15),  # type: ignore[operator]
            "patientId": "p1",
            "remindersSent": sent or [],
        }
    )


def test_nothing_is_due_before_the_longest_lead() -> None:
    assert due_lead(_appointment(), START - timedelta(hours=25), LEADS) is None


def test_the_day_ahead_reminder_is_due_inside_24_hours() -> None:
    assert due_lead(_appointment(), START - timedelta(hours=23), LEADS) == 1440


def test_the_shortest_opened_lead_wins_and_a_sent_lead_is_not_due_again() -> None:
    now = START - timedelta(hours=1)
    assert due_lead(_appointment(), now, LEADS) == 120
    assert due_lead(_appointment(sent=[120]), now, LEADS) is None
    assert due_lead(_appointment(sent=[1440]), now, LEADS) == 120


def test_only_booked_future_appointments_get_reminders() -> None:
    now = START - timedelta(hours=1)
    assert due_lead(_appointment(AppointmentStatus.CANCELLED), now, LEADS) is None
    assert due_lead(_appointment(AppointmentStatus.PROPOSED), now, LEADS) is None
    assert due_lead(_appointment(), START + timedelta(minutes=1), LEADS) is None


def test_due_lists_soonest_first() -> None:
    later = _appointment(id="ap-2", start=START + timedelta(minutes=30))
    sooner = _appointment(id="ap-1")
    found = due([(later, LEADS), (sooner, LEADS)], START - timedelta(hours=1))
    assert [(a.id, lead) for a, lead in found] == [("ap-1", 120), ("ap-2", 120)]
