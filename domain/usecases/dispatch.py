"""From a command to its handler: `decide` runs the handler `HANDLERS` names and turns a refusal into a decision
that changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from domain import commands as c
from domain.decisions import Context, Decision, Session, State
from domain.errors import DomainError, pydantic_details, validation_error
from domain.policy import authorize_command
from domain.usecases.appointments import (
    book,
    cancel,
    check_in,
    portal_request,
    reschedule,
    settle_saga,
    update_status,
)
from domain.usecases.reminders import reminder_sent
from domain.usecases.sagas import confirm, hold, release
from domain.usecases.schedules import (
    add_exception,
    create_schedule,
    create_slot,
    deactivate_schedule,
    open_schedule_slots,
    remove_exception,
    update_schedule,
    void_slot,
)
from domain.usecases.upkeep import reconcile_part
from domain.usecases.waitlist import (
    add_to_waitlist,
    cancel_entry,
    complete_waitlist_fulfilment,
    decline_offer,
    expire_offer,
    fulfill_waitlist,
    offer_slot,
    reoffer_slot,
    verify_waitlist_appointment,
)


def decide(command: c.Command, state: State, ctx: Context) -> Decision:
    session = Session(state, ctx)
    handler = HANDLERS.get(type(command))
    try:
        if handler is None:
            raise validation_error([{"field": "type", "message": f"{command.NAME} is not decided here"}])
        authorize_command(ctx.access, command.NAME)
        data = handler(command, session)
    except DomainError as error:
        return Decision(error=error)
    except ValidationError as exc:
        # A valid command can still break an entity's constraint (a 200-character patientId makes a
        # 208-character participant reference): refuse it instead of raising out of the decision.
        return Decision(error=validation_error(pydantic_details(exc)))
    return session.decision(data)


HANDLERS: dict[type[c.Command], Callable[[Any, Session], dict[str, Any]]] = {
    c.BookAppointment: book,
    c.BridgePortalAppointment: portal_request,
    c.RescheduleAppointment: reschedule,
    c.UpdateAppointmentStatus: update_status,
    c.CancelAppointment: cancel,
    c.CheckInPatient: check_in,
    c.CreateSchedule: create_schedule,
    c.CreateSlot: create_slot,
    c.AddScheduleException: add_exception,
    c.AddToWaitlist: add_to_waitlist,
    c.FulfillWaitlistEntry: fulfill_waitlist,
    c.VerifyWaitlistAppointment: verify_waitlist_appointment,
    c.CompleteWaitlistFulfilment: complete_waitlist_fulfilment,
    c.MarkReminderSent: reminder_sent,
    c.OfferSlotToWaitlist: offer_slot,
    c.DeclineWaitlistOffer: decline_offer,
    c.CancelWaitlistEntry: cancel_entry,
    c.ExpireWaitlistOffer: expire_offer,
    c.ReofferSlot: reoffer_slot,
    c.OpenScheduleSlots: open_schedule_slots,
    c.UpdateSchedule: update_schedule,
    c.DeactivateSchedule: deactivate_schedule,
    c.RemoveScheduleException: remove_exception,
    c.VoidSlot: void_slot,
    c.ReconcileSchedule: reconcile_part,
    c.HoldForSaga: hold,
    c.SettleSaga: settle_saga,
    c.ConfirmSagaStep: confirm,
    c.ReleaseSagaStep: release,
}
