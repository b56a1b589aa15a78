"""What a booking or move that spans resources carries from actor to actor (domain/usecases/sagas.py).

A plan names the resource that decides it (`home`: the appointment's resource), the steps to take on other
resources' partitions in order (hold a slot, reserve the patient's time), and what the home needs to finish.
It travels in the internal commands of the chain and waits, while the chain runs, in the home resource's index.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from domain.limits import safe_name
from domain.model import Actor, Id, Model, Participant, Period, UtcDatetime
from domain.status import AppointmentStatus

#: a saga's id: the starting command's id (routing key and command id)
SagaId = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(safe_name)]
#: the most slots of other resources one appointment holds with its own
MAX_ADDITIONAL_SLOTS = 5
#: the details of a refusal because the plan's holds expired
EXPIRED = {"reason": "hold-expired"}


class StepKind(StrEnum):
    SLOT = "slot"
    PATIENT = "patient"


class Intent(StrEnum):
    BOOK = "book"
    MOVE = "move"


class SagaStep(Model):
    kind: StepKind
    #: the routing token of the partition that takes the step
    token: str
    slot_id: Id | None = None


class NewAppointment(Model):
    """What a booking creates once its saga settles."""

    status: AppointmentStatus
    service_type: str | None = None
    participants: list[Participant] = []
    description: str | None = None


class Target(Model):
    """The main slot of a move to another resource, as its own partition saw it when holding it."""

    start: UtcDatetime
    end: UtcDatetime
    actor: Actor
    provider_id: str | None = None
    location_id: str | None = None


class SagaPlan(Model):
    id: SagaId
    tenant: str
    intent: Intent
    home: str
    appointment_id: Id
    patient_id: str
    slot_id: Id
    additional_slot_ids: list[Id] = []
    #: the appointment's (new) time: known at the start for a booking, set by the target's step for a move
    period: Period | None = None
    #: a move's former time, whose reservation of the patient's time the new one replaces
    old_period: Period | None = None
    target: Target | None = None
    #: the actors of the other resources held, added as participants
    actors: list[Actor] = []
    steps: list[SagaStep]
    expires_at: UtcDatetime
    #: the booking rules for patients apply
    by_patient: bool = False
    allow_double_booking: bool = False
    #: the starting command, whose idempotency key is answered with the saga's outcome
    origin_caller: str
    origin_command: SagaId
    booking: NewAppointment | None = None
    #: the patient's time is reserved under the appointment's id from the start (bookings started since the
    #: patient's confirmation step went), not under the saga's until a confirmation renames it
    patient_time_as_appointment: bool = False


class Failure(Model):
    """Why a step refused: the error the caller is answered with."""

    code: str
    message: str
    details: Any = None
    #: index of the step that refused (the steps before it hold something)
    at: int = 0

    @classmethod
    def hold_expired(cls, plan: SagaPlan) -> Failure:
        """The plan was given up at its expiry (by the home's sweep) before every step answered."""
        return cls(code="", message="the slots could not be held in time", details=dict(EXPIRED), at=len(plan.steps))

    @property
    def expired(self) -> bool:
        return bool(self.details == EXPIRED)
