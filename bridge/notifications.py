"""ReminderDispatchPort over NATS JetStream: the hand-off of a reminder to the notification service."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from nats.js import JetStreamContext

from domain.model import Appointment
from domain.reminders import reminder_key
from scheduling.core.config import REMINDER_SUBJECT

log = logging.getLogger(__name__)


class ReminderDispatch:
    """Hands a reminder to the notification service; it counts as sent only once JetStream acknowledged it."""

    BACKOFF = (0.2, 0.5, 1.0)

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def request(self, appointment: Appointment, lead_minutes: int, patient: dict[str, Any] | None) -> bool:
        payload = {
            "appointmentId": appointment.id,
            "tenantId": appointment.tenant_id,
            "patientId": appointment.patient_id,
            "patient": patient,
            "start": appointment.start.isoformat(),
            "providerId": appointment.provider_id,
            "locationId": appointment.location_id,
            "leadMinutes": lead_minutes,
        }
        headers = {
            "Nats-Msg-Id": f"reminder-{reminder_key(appointment, lead_minutes)}",
            "Content-Type": "application/json",
        }
        for attempt, pause in enumerate((0.0, *self.BACKOFF)):
            if pause:
                await asyncio.sleep(pause)  # backoff between attempts, not synchronisation
            try:
                await self._js.publish(REMINDER_SUBJECT, json.dumps(payload).encode(), headers=headers, timeout=2)
                return True
            except Exception as exc:
                log.warning("reminder hand-off for %s (attempt %d) failed: %r", appointment.id, attempt + 1, exc)
        return False
