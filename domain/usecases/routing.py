"""Which resource a command concerns: the bridge keys each command by it, so that one partition decides it."""

from __future__ import annotations

from domain import commands as c
from domain.ids import resource_token, token_of


def command_token(command: c.Command, tenant: str) -> str:
    """The routing key of a command: the token of the resource it concerns."""
    match command:
        case c.BookAppointment(slot_id=sid) | c.CreateSlot(schedule_id=sid) | c.AddScheduleException(schedule_id=sid):
            return token_of(sid)
        case (
            c.RescheduleAppointment(appointment_id=aid)
            | c.UpdateAppointmentStatus(appointment_id=aid)
            | c.CancelAppointment(appointment_id=aid)
            | c.CheckInPatient(appointment_id=aid)
            | c.MarkReminderSent(appointment_id=aid)
        ):
            return token_of(aid)
        case c.CreateSchedule(actor=actor):
            return resource_token(tenant, actor.reference)
        case c.AddToWaitlist(provider_id=provider):
            return resource_token(tenant, provider or "*")
        case (
            c.FulfillWaitlistEntry(entry_id=eid)
            | c.CompleteWaitlistFulfilment(entry_id=eid)
            | c.DeclineWaitlistOffer(entry_id=eid)
            | c.CancelWaitlistEntry(entry_id=eid)
            | c.ExpireWaitlistOffer(entry_id=eid)
        ):
            return token_of(eid)
        case c.ReofferSlot(slot_id=sid):
            return token_of(sid)
        case c.VerifyWaitlistAppointment(appointment_id=aid):
            return token_of(aid)
        case c.OfferSlotToWaitlist():
            return resource_token(tenant, "*")
        case (
            c.OpenScheduleSlots(schedule_id=sid)
            | c.ReconcileSchedule(schedule_id=sid)
            | c.UpdateSchedule(schedule_id=sid)
            | c.DeactivateSchedule(schedule_id=sid)
            | c.RemoveScheduleException(schedule_id=sid)
            | c.VoidSlot(slot_id=sid)
        ):
            return token_of(sid)
        case c.SagaStepCommand(plan=plan, at=at) if at < len(plan.steps):
            return plan.steps[at].token
        case c.SettleSaga(plan=plan):
            return plan.home
        case c.ReleaseSagaStep(step=step):
            return step.token
        case c.BridgePortalAppointment(slot_id=sid, provider_id=provider):
            return token_of(sid) if sid else resource_token(tenant, provider or "*")
    return resource_token(tenant, "*")
