"""DispatchReminder: each partition's actor hands off the reminders due among the appointments it owns.

The actor finds due (appointment, lead) pairs in its own partition's tables,
hands each to the ReminderDispatchPort and, once acknowledged, decides an
internal `reminder.sent` command: the lead joins the appointment's
`remindersSent`, so later dispatches skip it, restarts included. A crash
between the hand-off's ack and that decision hands it off again, with the same
`Nats-Msg-Id`, which JetStream drops inside its duplicate window.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from domain.commands import DispatchReminder, MarkReminderSent, parse_as
from domain.ids import token_of
from domain.model import Appointment
from domain.reminders import due
from scheduling import ports
from scheduling.faust_app import settings
from scheduling.routing import partition_of
from scheduling.wire import Claims, CommandEnvelope
from tables import appointments

log = logging.getLogger(__name__)


async def dispatch(env: CommandEnvelope, partition: int, decide_internal: Any) -> dict[str, Any]:
    """Hand off the reminders due on `partition`; returns a summary for the decision record."""
    command = parse_as(DispatchReminder, env.body)
    now = command.now or datetime.now(UTC)
    tenant = env.claims.tenant
    owned = (
        Appointment.model_validate(data)
        for aid, data in list(appointments.items())
        if partition_of(token_of(aid), settings.partitions) == partition and tenant in ("*", data.get("tenantId"))
    )
    found = due(owned, now, settings.reminder_leads_minutes)
    if not found:
        return {"sent": 0, "failed": 0}
    port = await ports.ready()
    sent = failed = 0
    for appointment, lead in found:
        try:
            patient = await port.patients.get(appointment.tenant_id, appointment.patient_id)
        except Exception as exc:  # the patient cache (PostgreSQL) is away: the next tick tries again
            log.warning("reminders of partition %d wait: patient cache unavailable (%r)", partition, exc)
            failed += 1
            break
        if await port.reminders.request(appointment, lead, patient):
            await decide_internal(
                token_of(appointment.id).encode(),
                CommandEnvelope(
                    delivery_id=f"reminder:{appointment.id}:{lead}",
                    type=MarkReminderSent.NAME,
                    body={"appointmentId": appointment.id, "leadMinutes": lead},
                    claims=Claims(tenant=appointment.tenant_id, sub="scheduling-reminders"),
                    command_id=f"reminder:{appointment.id}:{lead}",
                    source="reminders",
                ),
            )
            sent += 1
        else:
            failed += 1
            break  # the notification side is down: the rest waits for the next tick, the actor does not
    return {"sent": sent, "failed": failed}
