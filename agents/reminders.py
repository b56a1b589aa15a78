"""DispatchReminder: each partition's actor hands off the reminders due among the appointments it owns.

The actor finds due (appointment, lead) pairs through its own partition's indexes
(each resource's day indexes over the longest lead ahead: the cost follows the
resources and the next day's bookings, not the length of the history),
hands each to the ReminderDispatchPort and, once acknowledged, decides an
internal `reminder.sent` command: the lead joins the appointment's
`remindersSent`, so later dispatches skip it, restarts included. A crash
between the hand-off's ack and that decision hands it off again, with the same
`Nats-Msg-Id`, which JetStream drops inside its duplicate window.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.booking_policy import rules_of
from domain.commands import DispatchReminder, MarkReminderSent, parse_as
from domain.decisions import State
from domain.ids import token_of
from domain.model import Appointment, BookingPolicy, Schedule, Slot
from domain.ports import PatientCachePort, ReminderDispatchPort
from domain.reminders import due, reminder_key
from scheduling.core.routing import partition_of
from scheduling.core.wire import Claims, CommandEnvelope
from tables import Table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReminderPorts:
    patients: PatientCachePort
    reminders: ReminderDispatchPort


#: decides an internal command on the actor's partition: (routing key, envelope) -> awaited
DecideInternal = Callable[[bytes, CommandEnvelope], Awaitable[Any]]


@dataclass(frozen=True)
class Reminders:
    #: which resources there are, from their schedules' ids (few; the history is in the day indexes)
    schedules: Table
    partitions: int
    #: the lead times of schedules that set none (`SCHEDULING_REMINDER_LEADS`) and the other defaults
    defaults: BookingPolicy
    #: the ports, once the worker has connected them
    ports: Callable[[], Awaitable[ReminderPorts]]

    def upcoming(
        self, state: State, partition: int, tenant: str, now: datetime
    ) -> Iterator[tuple[Appointment, tuple[int, ...]]]:
        """The active appointments of `partition`'s resources starting within their schedule's longest lead,
        each with its schedule's lead times."""
        leads_of: dict[str, tuple[int, ...]] = {}
        for schedule_id in list(self.schedules.keys()):
            schedule = state.entity("schedule", schedule_id)
            if partition_of(token_of(schedule_id), self.partitions) == partition and isinstance(schedule, Schedule):
                leads_of[schedule_id] = rules_of(schedule.booking_policy, self.defaults).reminder_leads
        horizon = now + timedelta(minutes=max((max(leads, default=0) for leads in leads_of.values()), default=0))
        days = [now.date() + timedelta(days=i) for i in range((horizon.date() - now.date()).days + 1)]
        for token in sorted({token_of(schedule_id) for schedule_id in leads_of}):
            for day in days:
                index = state.day(token, day)
                for appointment_id, period in (index.appointments if index else {}).items():
                    if not now < period.start <= horizon:
                        continue
                    appointment = state.entity("appointment", appointment_id)
                    if not isinstance(appointment, Appointment) or tenant not in ("*", appointment.tenant_id):
                        continue
                    slot = state.entity("slot", appointment.slot_id)
                    yield appointment, leads_of.get(slot.schedule_id, ()) if isinstance(slot, Slot) else ()

    async def dispatch(
        self, env: CommandEnvelope, partition: int, state: State, decide_internal: DecideInternal
    ) -> dict[str, Any]:
        """Hand off the reminders due on `partition`; returns a summary for the decision record."""
        command = parse_as(DispatchReminder, env.body)
        now = command.now or datetime.now(UTC)
        found = due(self.upcoming(state, partition, env.claims.tenant, now), now)
        if not found:
            return {"sent": 0, "failed": 0}
        port = await self.ports()
        sent = failed = 0
        for appointment, lead in found:
            try:
                patient = await port.patients.get(appointment.tenant_id, appointment.patient_id)
            except Exception as exc:  # the patient cache (PostgreSQL) is away: the next tick tries again
                log.warning("reminders of partition %d wait: patient cache unavailable (%r)", partition, exc)
                failed += 1
                break
            if not await port.reminders.request(appointment, lead, patient):
                failed += 1
                break  # the notification side is down: the rest waits for the next tick, the actor does not
            await decide_internal(
                token_of(appointment.id).encode(),
                CommandEnvelope(
                    delivery_id=f"reminder:{reminder_key(appointment, lead)}",
                    type=MarkReminderSent.NAME,
                    body={"appointmentId": appointment.id, "leadMinutes": lead},
                    claims=Claims(tenant=appointment.tenant_id, sub="scheduling-reminders"),
                    command_id=f"reminder:{reminder_key(appointment, lead)}",
                    source="reminders",
                ),
            )
            sent += 1
        return {"sent": sent, "failed": failed}
