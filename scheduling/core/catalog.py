"""The public commands, each declared once: its DTO, NATS subject, HTTP route and reply.

The bridge's allow-list, the HTTP command routes and the OpenAPI document are derived from
`CATALOG`; who may issue a command is the access policy's (domain/policy.py). Adding a command:
its DTO in `domain/commands.py`, its decision in `domain/usecases/`, one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain import commands as c
from scheduling.core.config import COMMAND_SUBJECT_PREFIX


@dataclass(frozen=True)
class PublicCommand:
    command: type[c.Command]
    #: the HTTP route; `{id}` in it fills `path_field` of the body, any other `{name}` the body's `name`
    path: str
    path_field: str | None = None
    #: 201 Created instead of 200 on success
    created: bool = False
    #: the OpenAPI component describing the reply's `data`
    reply: str = "Appointment"
    method: str = "POST"

    @property
    def name(self) -> str:
        return self.command.NAME

    @property
    def subject(self) -> str:
        return COMMAND_SUBJECT_PREFIX + self.name


CATALOG: tuple[PublicCommand, ...] = (
    PublicCommand(c.BookAppointment, "/appointments", created=True),
    PublicCommand(c.RescheduleAppointment, "/appointments/{id}/reschedule", "appointmentId"),
    PublicCommand(c.UpdateAppointmentStatus, "/appointments/{id}/status", "appointmentId"),
    PublicCommand(c.CancelAppointment, "/appointments/{id}/cancel", "appointmentId"),
    PublicCommand(c.CheckInPatient, "/appointments/{id}/check-in", "appointmentId"),
    PublicCommand(c.CreateSchedule, "/schedules", created=True, reply="ScheduleCreated"),
    PublicCommand(c.AddScheduleException, "/schedules/{id}/exceptions", "scheduleId", reply="ScheduleWithConflicts"),
    PublicCommand(c.UpdateSchedule, "/schedules/{id}", "scheduleId", reply="ScheduleWithConflicts", method="PATCH"),
    PublicCommand(c.DeactivateSchedule, "/schedules/{id}/deactivate", "scheduleId", reply="ScheduleWithConflicts"),
    PublicCommand(
        c.RemoveScheduleException,
        "/schedules/{id}/exceptions/{exceptionId}",
        "scheduleId",
        reply="ScheduleWithConflicts",
        method="DELETE",
    ),  # fmt: skip
    PublicCommand(c.CreateSlot, "/schedules/{id}/slots", "scheduleId", created=True, reply="Slot"),
    PublicCommand(c.VoidSlot, "/slots/{id}/void", "slotId", reply="Slot"),
    PublicCommand(c.AddToWaitlist, "/waitlist", created=True, reply="WaitlistEntry"),
    PublicCommand(c.FulfillWaitlistEntry, "/waitlist/{id}/fulfill", "entryId", reply="WaitlistEntry"),
    PublicCommand(c.DeclineWaitlistOffer, "/waitlist/{id}/decline", "entryId", reply="WaitlistEntry"),
    PublicCommand(c.CancelWaitlistEntry, "/waitlist/{id}/cancel", "entryId", reply="WaitlistEntry"),
    PublicCommand(c.DispatchReminder, "/reminders/dispatch", reply="DispatchSummary"),
    PublicCommand(c.ExpireWaitlistOffers, "/waitlist/expire-offers", reply="DispatchSummary"),
    PublicCommand(c.ExpireHolds, "/holds/expire", reply="DispatchSummary"),
)
#: the names a caller may send (`scheduling.cmd.<name>`); internal commands are not among them
PUBLIC_NAMES = frozenset(entry.name for entry in CATALOG)
BY_NAME = {entry.name: entry for entry in CATALOG}
