"""Entities and value objects, FHIR-flavoured, serialized in camelCase.

Times are timezone-aware and normalized to UTC on the way in, so comparisons
and overlap checks never mix offsets.
"""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from domain.limits import bounded_utc, safe_text
from domain.status import AppointmentStatus

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


#: an aware time, normalized to UTC and bounded (domain/limits.py), so no arithmetic on it overflows
UtcDatetime = Annotated[AwareDatetime, AfterValidator(bounded_utc)]


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a time of day without offset: the pattern's timezone gives its meaning")
    return value


LocalTime = Annotated[time, AfterValidator(_local)]
Id = Annotated[str, Field(pattern=ID_PATTERN.pattern)]


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ActorType(StrEnum):
    PRACTITIONER = "Practitioner"
    LOCATION = "Location"
    DEVICE = "Device"
    HEALTHCARE_SERVICE = "HealthcareService"
    PATIENT = "Patient"


#: The kinds of actor a schedule (a bookable resource) may belong to.
RESOURCE_ACTOR_TYPES = frozenset(
    {
        ActorType.PRACTITIONER,
        ActorType.LOCATION,
        ActorType.DEVICE,
        ActorType.HEALTHCARE_SERVICE,
    }
)


class Actor(Model):
    reference: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(safe_text)]
    type: ActorType


class Period(Model):
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def overlaps(self, other: Period) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Period) -> bool:
        return self.start <= other.start and other.end <= self.end


#: seats of one slot
Capacity = Annotated[int, Field(ge=1, le=1000)]


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class AvailabilityWindow(Model):
    days_of_week: Annotated[list[Weekday], Field(min_length=1)]
    start_time: LocalTime
    end_time: LocalTime

    @model_validator(mode="after")
    def _ordered(self) -> AvailabilityWindow:
        if self.end_time <= self.start_time:
            raise ValueError("endTime must be after startTime")
        return self


class AvailabilityPattern(Model):
    windows: Annotated[list[AvailabilityWindow], Field(min_length=1, max_length=50)]
    slot_minutes: Annotated[int, Field(ge=5, le=24 * 60)]
    #: seats of each slot the pattern opens (group visits, vaccination sessions)
    capacity: Capacity = 1
    timezone: Annotated[str, Field(min_length=1, max_length=64)]
    valid_from: UtcDatetime | None = None
    valid_to: UtcDatetime | None = None

    @model_validator(mode="after")
    def _known_zone(self) -> AvailabilityPattern:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {self.timezone!r}") from exc
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("validTo must be after validFrom")
        return self


class ExceptionKind(StrEnum):
    #: the schedule is closed in the window (a holiday): its free slots there close
    UNAVAILABLE = "unavailable"
    #: extra opening hours (a Saturday clinic): slots open in the window
    AVAILABLE = "available"


class ScheduleException(Model):
    #: set on every exception added since exceptions can be removed (RemoveScheduleException)
    id: str | None = None
    kind: ExceptionKind = ExceptionKind.UNAVAILABLE
    start: UtcDatetime
    end: UtcDatetime
    reason: str | None = None

    @property
    def period(self) -> Period:
        return Period(start=self.start, end=self.end)


#: a year, in minutes: no notice, cut-off or window longer than that means anything
Minutes = Annotated[int, Field(ge=0, le=525_600)]
LeadMinutes = Annotated[int, Field(ge=1, le=525_600)]


class CheckInWindow(Model):
    before_minutes: Annotated[Minutes | None, Field(description="check-in opens this long before start (60)")] = None
    after_minutes: Annotated[Minutes | None, Field(description="and closes this long after it (30)")] = None


class BookingPolicy(Model):
    """What a schedule sets of the booking rules; a field left out follows the service-wide default
    (`SCHEDULING_<FIELD>`, else the value in brackets)."""

    min_notice_minutes: Annotated[Minutes | None, Field(description="patients book at least this long ahead (60)")] = (
        None
    )
    max_advance_days: Annotated[
        Annotated[int, Field(ge=0, le=3660)] | None, Field(description="patients book at most this far ahead (90)")
    ] = None
    cancellation_cutoff_minutes: Annotated[
        Minutes | None, Field(description="patients cannot cancel or reschedule this close to the start (0: none)")
    ] = None
    check_in_window: CheckInWindow | None = None
    reminder_lead_minutes: Annotated[
        Annotated[list[LeadMinutes], Field(max_length=10)] | None,
        Field(description="reminders this long before the start (SCHEDULING_REMINDER_LEADS: 1440, 120)"),
    ] = None
    waitlist_offer_minutes: Annotated[
        Annotated[int, Field(ge=1, le=525_600)] | None,
        Field(description="an unanswered waitlist offer ends after this long (60)"),
    ] = None
    buffer_before_minutes: Annotated[
        Minutes | None, Field(description="no other appointment of the resource this long before one (0)")
    ] = None
    buffer_after_minutes: Annotated[
        Minutes | None, Field(description="no other appointment of the resource this long after one (0)")
    ] = None
    max_per_day: Annotated[
        Annotated[int, Field(ge=1, le=10_000)] | None,
        Field(description="active appointments per resource and local day of the schedule (none)"),
    ] = None


class Entity(Model):
    """Anything with an id, a tenant and an optimistic-lock version."""

    kind: ClassVar[str]
    id: Id
    tenant_id: str
    version: int = 1


class Schedule(Entity):
    kind: ClassVar[str] = "schedule"
    actor: Actor
    location_id: str
    service_type: str
    planning_horizon: Period
    active: bool = True
    availability_pattern: AvailabilityPattern | None = None
    #: the pattern applies from here on (UpdateSchedule); slots before it came from an earlier pattern
    pattern_effective_from: UtcDatetime | None = None
    exceptions: list[ScheduleException] = []
    #: what this schedule sets of the booking rules; the rest follows the service's defaults
    booking_policy: BookingPolicy = BookingPolicy()


class SlotStatus(StrEnum):
    FREE = "free"
    BUSY = "busy"
    BUSY_UNAVAILABLE = "busy-unavailable"
    BUSY_TENTATIVE = "busy-tentative"
    ENTERED_IN_ERROR = "entered-in-error"


class SlotHold(Model):
    """A seat held for an appointment by a booking or move that spans resources (domain/usecases/sagas.py),
    until the resource that decides it (`home`) confirms or releases it."""

    saga_id: str
    appointment_id: str
    home: str
    expires_at: UtcDatetime


class Slot(Entity):
    kind: ClassVar[str] = "slot"
    schedule_id: str
    start: UtcDatetime
    end: UtcDatetime
    status: SlotStatus = SlotStatus.FREE
    overbooked: bool = False
    #: seats: active appointments the slot takes; it is `busy` once `booked` reaches it
    capacity: Capacity = 1
    booked: Annotated[int, Field(ge=0)] = 0
    #: what opened it: "pattern", "available:<exception id>", or nothing for a slot created by hand
    origin: str | None = None
    #: seats held (counted in `booked`) for bookings that span resources, not yet confirmed
    holds: list[SlotHold] = []
    #: Denormalized from the schedule so the read model can search by provider and location.
    provider_id: str | None = None
    location_id: str | None = None
    service_type: str | None = None

    @property
    def period(self) -> Period:
        return Period(start=self.start, end=self.end)


class ParticipantStatus(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"
    NEEDS_ACTION = "needs-action"


class Participant(Model):
    actor: Actor
    required: bool = True
    status: ParticipantStatus = ParticipantStatus.ACCEPTED


class PendingMove(Model):
    """A reschedule that spans resources, in progress: the target slots are being held."""

    saga_id: str
    slot_id: str
    additional_slot_ids: list[str] = []
    expires_at: UtcDatetime


class Appointment(Entity):
    kind: ClassVar[str] = "appointment"
    status: AppointmentStatus
    slot_id: str
    start: UtcDatetime
    end: UtcDatetime
    service_type: str | None = None
    participants: list[Participant] = []
    patient_id: str
    description: str | None = None
    cancellation_reason: str | None = None
    provider_id: str | None = None
    location_id: str | None = None
    #: slots of other resources (a room, a device, a second practitioner) held with `slot_id`
    additional_slot_ids: list[str] = []
    pending_move: PendingMove | None = None
    #: lead times (minutes) whose reminder hand-off was acknowledged; each is sent once
    reminders_sent: list[int] = []

    @property
    def period(self) -> Period:
        return Period(start=self.start, end=self.end)


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class WaitlistEntry(Entity):
    kind: ClassVar[str] = "waitlist"
    patient_id: str
    provider_id: str | None = None
    location_id: str | None = None
    service_type: str
    requested_period: Period
    priority: int = 0
    status: WaitlistStatus = WaitlistStatus.WAITING
    created_at: UtcDatetime
    appointment_id: str | None = None
    offered_slot_id: str | None = None
    #: when an unanswered offer of `offered_slot_id` ends (the schedule's `waitlistOfferMinutes`)
    offer_expires_at: UtcDatetime | None = None
    #: slots this entry declined or let expire: never offered to it again (the latest MAX_DECLINED)
    declined_slot_ids: list[str] = []


ENTITY_TYPES: dict[str, type[Entity]] = {cls.kind: cls for cls in (Schedule, Slot, Appointment, WaitlistEntry)}
