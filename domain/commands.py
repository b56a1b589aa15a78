"""Command DTOs: one small model per use case, validated at the edge.

`NAME` is the command's type on the wire; the bridge maps NATS subjects and
HTTP routes to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, Field, ValidationError, ValidationInfo, field_validator, model_validator

from domain.errors import pydantic_details, validation_error
from domain.limits import safe_name, safe_text
from domain.model import (
    Actor,
    AvailabilityPattern,
    BookingPolicy,
    Capacity,
    ExceptionKind,
    Id,
    Model,
    Participant,
    Period,
    Slot,
    UtcDatetime,
)
from domain.saga import MAX_ADDITIONAL_SLOTS, Failure, SagaId, SagaPlan, SagaStep
from domain.status import AppointmentStatus

Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(safe_text)]
CommandId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(safe_name)]
Version = Annotated[int, Field(ge=1)]
#: slots of other resources held together with the main one, all or nothing
AdditionalSlots = Annotated[list[Id], Field(max_length=MAX_ADDITIONAL_SLOTS)]


def _end_after_start(end: datetime | None, info: ValidationInfo) -> datetime | None:
    """As a validator of `end`, so VALIDATION_FAILED details name the field (CONTRACT section 4)."""
    start = info.data.get("start")
    if end is not None and start is not None and end <= start:
        raise ValueError("end must be after start")
    return end


class Command(Model):
    NAME: ClassVar[str]
    command_id: CommandId | None = None


class BookAppointment(Command):
    NAME: ClassVar[str] = "appointment.book"
    slot_id: Id
    patient_id: Text
    service_type: Text | None = None
    participants: Annotated[list[Participant], Field(max_length=20)] = []
    description: Annotated[str, Field(max_length=2000), AfterValidator(safe_text)] | None = None
    allow_double_booking: bool = False
    additional_slot_ids: AdditionalSlots = []


class RescheduleAppointment(Command):
    NAME: ClassVar[str] = "appointment.reschedule"
    appointment_id: Id
    new_slot_id: Id
    expected_version: Version | None = None
    #: the other resources' slots at the new time; those held before are given back
    additional_slot_ids: AdditionalSlots = []


class UpdateAppointmentStatus(Command):
    NAME: ClassVar[str] = "appointment.status"
    appointment_id: Id
    status: AppointmentStatus
    expected_version: Version | None = None


class CancelAppointment(Command):
    NAME: ClassVar[str] = "appointment.cancel"
    appointment_id: Id
    reason: Annotated[str, Field(max_length=500), AfterValidator(safe_text)] | None = None
    expected_version: Version | None = None


class CheckInPatient(Command):
    NAME: ClassVar[str] = "appointment.check-in"
    appointment_id: Id
    expected_version: Version | None = None


#: A planning horizon longer than this is refused: its pattern would be expanded day by day.
MAX_HORIZON = timedelta(days=731)


class CreateSchedule(Command):
    NAME: ClassVar[str] = "schedule.create"
    actor: Actor
    location_id: Text
    service_type: Text
    planning_horizon: Period
    availability_pattern: AvailabilityPattern | None = None
    booking_policy: BookingPolicy | None = None

    @field_validator("planning_horizon")
    @classmethod
    def _bounded(cls, horizon: Period) -> Period:
        if horizon.end - horizon.start > MAX_HORIZON:
            raise ValueError("a planning horizon spans at most 731 days")
        return horizon


class AddScheduleException(Command):
    NAME: ClassVar[str] = "schedule.add-exception"
    schedule_id: Id
    start: UtcDatetime
    end: UtcDatetime
    reason: Annotated[str, Field(max_length=500), AfterValidator(safe_text)] | None = None
    kind: ExceptionKind = ExceptionKind.UNAVAILABLE

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        return _end_after_start(end, info)


class UpdateSchedule(Command):
    """Change a schedule from now on; held appointments are never touched (listed as conflicts)."""

    NAME: ClassVar[str] = "schedule.update"
    schedule_id: Id
    planning_horizon: Period | None = None
    availability_pattern: AvailabilityPattern | None = None
    #: the new pattern applies from here (default: now); earlier slots stay as they are
    pattern_effective_from: UtcDatetime | None = None
    service_type: Text | None = None
    location_id: Text | None = None
    active: bool | None = None
    booking_policy: BookingPolicy | None = None
    expected_version: Version | None = None

    @field_validator("planning_horizon")
    @classmethod
    def _bounded(cls, horizon: Period | None) -> Period | None:
        if horizon is not None and horizon.end - horizon.start > MAX_HORIZON:
            raise ValueError("a planning horizon spans at most 731 days")
        return horizon


class DeactivateSchedule(Command):
    NAME: ClassVar[str] = "schedule.deactivate"
    schedule_id: Id
    expected_version: Version | None = None


class RemoveScheduleException(Command):
    NAME: ClassVar[str] = "schedule.remove-exception"
    schedule_id: Id
    exception_id: Id


class VoidSlot(Command):
    NAME: ClassVar[str] = "slot.void"
    slot_id: Id
    reason: Annotated[str, Field(max_length=500), AfterValidator(safe_text)] | None = None


class ReconcileSchedule(Command):
    """Internal: bring the slots of a schedule's window in line with its definition, a part at a time.

    Used by every change of a schedule (update, deactivation, exceptions added or removed): within
    [start, end) from `resume_at`, slots that should be open and are closed open again, free slots that
    should not be open close, missing pattern or override slots open, held ones are listed in `reply`.
    """

    NAME: ClassVar[str] = "schedule.reconcile"
    schedule_id: Id
    start: UtcDatetime
    end: UtcDatetime
    resume_at: UtcDatetime | None = None
    reply: dict[str, Any]


class CreateSlot(Command):
    NAME: ClassVar[str] = "slot.create"
    schedule_id: Id
    start: UtcDatetime
    end: UtcDatetime
    overbooked: bool = False
    capacity: Capacity = 1

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        return _end_after_start(end, info)


class AddToWaitlist(Command):
    NAME: ClassVar[str] = "waitlist.add"
    patient_id: Text
    provider_id: Text | None = None
    location_id: Text | None = None
    service_type: Text
    requested_period: Period
    priority: Annotated[int, Field(ge=0, le=100)] = 0


class FulfillWaitlistEntry(Command):
    NAME: ClassVar[str] = "waitlist.fulfill"
    entry_id: Id
    appointment_id: Id


class VerifyWaitlistAppointment(Command):
    """Internal: on the appointment's partition, check it is this tenant's and this patient's (waitlist fulfilment)."""

    NAME: ClassVar[str] = "waitlist.verify-appointment"
    entry_id: Id
    appointment_id: Id
    patient_id: Text


class CompleteWaitlistFulfilment(Command):
    """Internal: back on the entry's partition, fulfil it with the verified appointment."""

    NAME: ClassVar[str] = "waitlist.complete-fulfilment"
    entry_id: Id
    appointment_id: Id


class BridgePortalAppointment(Command):
    NAME: ClassVar[str] = "portal.appointment.requested"
    request_id: CommandId
    patient_id: Text
    slot_id: Id | None = None
    provider_id: Text | None = None
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    service_type: Text
    note: Annotated[str, Field(max_length=2000), AfterValidator(safe_text)] | None = None

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        return _end_after_start(end, info)

    @model_validator(mode="after")
    def _slot_or_window(self) -> BridgePortalAppointment:
        if self.slot_id is None and not (self.provider_id and self.start and self.end):
            raise ValueError("either slotId or providerId, start and end are required")
        return self


class PartitionWide(Command):
    """Work every partition's actor does over what it owns: fanned out by the bridge and by the timers.

    `now` lets an administrator (and a test) run it for another time than the decision's.
    """

    now: UtcDatetime | None = None


class DispatchReminder(PartitionWide):
    NAME: ClassVar[str] = "reminder.dispatch"


class ExpireWaitlistOffers(PartitionWide):
    """Offers unanswered past their expiry go back to waiting, and their slots to the next match."""

    NAME: ClassVar[str] = "waitlist.expire-offers"


class MarkReminderSent(Command):
    """Internal: the reminder hand-off for one appointment and lead was acknowledged."""

    NAME: ClassVar[str] = "reminder.sent"
    appointment_id: Id
    lead_minutes: Annotated[int, Field(ge=1)]


class OpenScheduleSlots(Command):
    """Internal: open the next part of a schedule's pattern slots, from `start` on.

    A pattern over a long horizon opens thousands of slots; opening them in parts keeps
    every decision record (and journal entry) small. `reply` is the caller's answer,
    given when the last part is opened.
    """

    NAME: ClassVar[str] = "schedule.open-slots"
    schedule_id: Id
    start: UtcDatetime
    reply: dict[str, Any]


class OfferSlotToWaitlist(Command):
    """Internal: a slot of some provider became free; offer it to waiting entries for any provider."""

    NAME: ClassVar[str] = "waitlist.offer"
    slot: Slot
    #: how long the offer holds, from the slot's schedule (this partition does not hold it)
    offer_minutes: Annotated[int, Field(ge=1, le=525_600)] | None = None


class DeclineWaitlistOffer(Command):
    NAME: ClassVar[str] = "waitlist.decline"
    entry_id: Id


class CancelWaitlistEntry(Command):
    NAME: ClassVar[str] = "waitlist.cancel"
    entry_id: Id


class ReofferSlot(Command):
    """Internal: on the slot's partition, offer the slot again if it is still free (an offer ended unanswered)."""

    NAME: ClassVar[str] = "waitlist.reoffer"
    slot_id: Id


class ExpireWaitlistOffer(Command):
    """Internal: on the entry's partition, end its offer of `slot_id` if still unanswered past its expiry."""

    NAME: ClassVar[str] = "waitlist.expire-offer"
    entry_id: Id
    slot_id: Id
    #: the sweep's time (an administrator may sweep for another time than the decision's)
    now: UtcDatetime | None = None


class SagaStepCommand(Command):
    """Internal: about step `at` of a saga's plan, decided on that step's partition (domain/usecases/sagas.py)."""

    plan: SagaPlan
    at: Annotated[int, Field(ge=0)]


class HoldForSaga(SagaStepCommand):
    """Internal: take what step `at` of the plan names."""

    NAME: ClassVar[str] = "saga.hold"


class SettleSaga(Command):
    """Internal: on the home's partition, end the saga: every step held, or `failure`."""

    NAME: ClassVar[str] = "saga.settle"
    plan: SagaPlan
    failure: Failure | None = None


class ConfirmSagaStep(SagaStepCommand):
    """Internal: what step `at` held is the appointment's for good."""

    NAME: ClassVar[str] = "saga.confirm"


class ReleaseSagaStep(Command):
    """Internal: on a step's partition, give back what saga `saga_id` held there, or (without it) what the
    appointment held there."""

    NAME: ClassVar[str] = "saga.release"
    appointment_id: Id
    step: SagaStep
    period: Period | None = None
    saga_id: SagaId | None = None


class ExpireHolds(PartitionWide):
    """Each partition's actor ends the sagas it decides that are still waiting past their expiry."""

    NAME: ClassVar[str] = "holds.expire"


COMMANDS: dict[str, type[Command]] = {
    cls.NAME: cls
    for cls in (
        BookAppointment,
        RescheduleAppointment,
        UpdateAppointmentStatus,
        CancelAppointment,
        CheckInPatient,
        CreateSchedule,
        AddScheduleException,
        CreateSlot,
        AddToWaitlist,
        FulfillWaitlistEntry,
        VerifyWaitlistAppointment,
        CompleteWaitlistFulfilment,
        BridgePortalAppointment,
        DispatchReminder,
        MarkReminderSent,
        OfferSlotToWaitlist,
        DeclineWaitlistOffer,
        CancelWaitlistEntry,
        ReofferSlot,
        ExpireWaitlistOffer,
        ExpireWaitlistOffers,
        OpenScheduleSlots,
        UpdateSchedule,
        DeactivateSchedule,
        RemoveScheduleException,
        VoidSlot,
        ReconcileSchedule,
        HoldForSaga,
        SettleSaga,
        ConfirmSagaStep,
        ReleaseSagaStep,
        ExpireHolds,
    )
}


def parse_command(name: str, body: Any) -> Command:
    """Build a command from a decoded JSON body, or raise VALIDATION_FAILED with field details."""
    cls = COMMANDS.get(name)
    if cls is None:
        raise validation_error(
            [{"field": "type", "message": f"unknown command {name!r}"}],
            "unknown command",
        )
    return parse_as(cls, body)


C = TypeVar("C", bound=Command)


def parse_as(cls: type[C], body: Any) -> C:
    """Build a command of a known type from a decoded JSON body, or raise VALIDATION_FAILED."""
    if not isinstance(body, dict):
        raise validation_error([{"field": "body", "message": "a JSON object is required"}])
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        raise validation_error(pydantic_details(exc)) from None
