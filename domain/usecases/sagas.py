"""Bookings and moves across resources, decided without locks: a saga of internal commands between actors.

The appointment's resource (`home`) decides. Its actor checks what it holds, saves the plan in its resource
index and sends the first step; each step runs on its own resource's partition, serially with everything else
there, and either takes what it names and passes the plan on, or refuses and sends the plan back:

    home: book / reschedule --saga.hold--> slot of another resource (held for the appointment, with an expiry)
         --saga.hold--> ... --saga.hold--> the patient's time (PATIENT_DOUBLE_BOOKING if it overlaps)
         --saga.settle--> home: checks its own slots again, creates or moves the appointment, answers the caller
         --saga.confirm--> every step (a held seat becomes booked)   or   --saga.release--> every step

A booking reserves the patient's time under the appointment's id from the start, so its patient step needs no
confirmation (a plain booking is three commands: book, the patient's time, settle).

Only the home decides the outcome, once: a settle finds the plan waiting beside the home's index or not at all. A plan
still waiting at its expiry is ended by the home's sweep (`holds.expire`) exactly as a refusal is, and a step
that arrives after that is given back when its settle finds no plan. Every step is a journaled command, so a
crash anywhere resumes the chain: no slot is held twice, none stays held by nobody past the expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain import commands as c
from domain.calendar import Calendar
from domain.decisions import Session
from domain.errors import DomainError, ErrorCode, validation_error
from domain.ids import token_of
from domain.model import Appointment, Participant, Slot, SlotHold, SlotStatus
from domain.resource import WaitingSaga
from domain.saga import Failure, Intent, SagaPlan, SagaStep, StepKind, Target
from domain.status import AppointmentStatus
from domain.usecases.seats import _bookable, _give_back, _release_elsewhere
from domain.usecases.waitlist import _offer_to_waitlist

#: what the home does when every step held: create or move the appointment (raising before it saves anything)
Finish = Callable[[Session, SagaPlan], dict[str, Any]]

#: what a move's refusal is answered with when the target slot cannot be had (CONTRACT section 5)
_MOVE_REFUSALS = {ErrorCode.SLOT_NOT_AVAILABLE: ErrorCode.NEW_SLOT_NOT_AVAILABLE}


def start(session: Session, plan: SagaPlan) -> dict[str, Any]:
    """Save the plan beside the home's index and send its first step; the caller is answered by the last one.

    The saga's id (and a booking's appointment id) derive from the command id, which another caller may use
    too (repeats are told apart by caller in the journal, not here): while a saga of that id is waiting, a
    second one is refused instead of overwriting it."""
    waiting = session.saga(plan.home, plan.id)
    if waiting is not None and waiting.plan is not None:
        raise validation_error([{"field": "commandId", "message": "already used for a booking or move in progress"}])
    session.save_saga(WaitingSaga(home=plan.home, saga_id=plan.id, plan=plan, expires_at=plan.expires_at))
    _send_step(session, plan, 0)
    session.await_saga()
    return {"sagaId": plan.id}


def _send_step(session: Session, plan: SagaPlan, at: int) -> None:
    if at < len(plan.steps):
        body = {"plan": plan.dump(), "at": at}
        session.follow_up(plan.steps[at].token, c.HoldForSaga.NAME, body, carries_reply=True)
    else:
        session.follow_up(plan.home, c.SettleSaga.NAME, {"plan": plan.dump()}, carries_reply=True)


def _step(session: Session, plan: SagaPlan, at: int) -> SagaStep:
    """Step `at` of a plan of the caller's tenant (the commands topic is not trusted), or VALIDATION_FAILED."""
    if plan.tenant != session.ctx.tenant:
        raise validation_error([{"field": "plan.tenant", "message": "another tenant's saga"}])
    if not 0 <= at < len(plan.steps):
        raise validation_error([{"field": "at", "message": "no such step"}])
    return plan.steps[at]


def hold(cmd: c.HoldForSaga, session: Session) -> dict[str, Any]:
    """A step, on its resource's partition: take what it names and pass the plan on, or send the refusal home."""
    plan, at = cmd.plan, cmd.at
    step = _step(session, plan, at)
    try:
        plan = _take_slot(session, plan, step) if step.kind is StepKind.SLOT else _take_time(session, plan, step)
    except DomainError as refused:
        body = {"plan": plan.dump(), "failure": _failure(refused, at).dump()}
        session.follow_up(plan.home, c.SettleSaga.NAME, body, carries_reply=True)
        return {"sagaId": plan.id, "refused": refused.code.value}
    _send_step(session, plan, at + 1)
    return {"sagaId": plan.id, "held": at}


def _failure(refused: DomainError, at: int) -> Failure:
    return Failure(code=refused.code.value, message=refused.message, details=refused.details, at=at)


def hold_seat(session: Session, slot: Slot, plan: SagaPlan, overlapping: list[str]) -> None:
    """Take a seat of `slot` for the plan's appointment until the home confirms or releases it: the slot is
    `busy-tentative` once its last seat is taken, and the resource's time is the appointment's meanwhile."""
    held = SlotHold(saga_id=plan.id, appointment_id=plan.appointment_id, home=plan.home, expires_at=plan.expires_at)
    booked = slot.booked + 1
    status = SlotStatus.BUSY_TENTATIVE if booked >= slot.capacity else SlotStatus.FREE
    update = {
        "booked": booked,
        "holds": [*slot.holds, held],
        "status": status,
        "overbooked": slot.overbooked or bool(overlapping),
    }
    session.save(slot.model_copy(update=update))
    Calendar(session, token_of(slot.id)).take(slot, plan.appointment_id, slot.period)


def confirm_seat(session: Session, slot: Slot, plan: SagaPlan) -> None:
    """The seat the plan holds of `slot` is its appointment's: `busy` once the slot is full (`busy-tentative`
    while other seats are still held, or for a proposed appointment)."""
    holds = [h for h in slot.holds if h.saga_id != plan.id]
    tentative = holds or (plan.booking is not None and plan.booking.status is AppointmentStatus.PROPOSED)
    full = SlotStatus.BUSY_TENTATIVE if tentative else SlotStatus.BUSY
    session.save(
        slot.model_copy(update={"holds": holds, "status": full if slot.booked >= slot.capacity else SlotStatus.FREE})
    )


def release_hold(session: Session, slot_id: str, saga_id: str, appointment_id: str) -> bool:
    """Give back the seat saga `saga_id` holds of the slot, if it still does."""
    slot = session.find(Slot, slot_id)
    if slot is None or not any(h.saga_id == saga_id for h in slot.holds):
        return False  # never held here, or released before
    _give_back(session, slot, appointment_id)
    return True


def _take_slot(session: Session, plan: SagaPlan, step: SagaStep) -> SagaPlan:
    assert step.slot_id is not None
    slot, schedule, overlapping = _bookable(
        session,
        step.slot_id,
        allow_double_booking=plan.allow_double_booking,
        patient=plan.by_patient,
        moving=plan.appointment_id,
    )
    hold_seat(session, slot, plan, overlapping)
    if step.slot_id == plan.slot_id:  # the main slot of a move: the appointment's new time and resource
        target = Target(
            start=slot.start,
            end=slot.end,
            actor=schedule.actor,
            provider_id=slot.provider_id,
            location_id=slot.location_id,
        )
        return plan.model_copy(update={"period": slot.period, "target": target})
    return plan.model_copy(update={"actors": [*plan.actors, schedule.actor]})


def _take_time(session: Session, plan: SagaPlan, step: SagaStep) -> SagaPlan:
    """The patient's time: no other active appointment of the patient may overlap (PATIENT_DOUBLE_BOOKING)."""
    assert plan.period is not None
    calendar = Calendar(session, step.token)
    clash = [k for k in calendar.overlapping_appointments(plan.period) if k not in (plan.appointment_id, plan.id)]
    if clash and not plan.allow_double_booking:
        # saga ids (with a colon) are moves still in progress; a booking in progress is under its appointment id
        appointments = [k for k in clash if ":" not in k]
        raise DomainError(
            ErrorCode.PATIENT_DOUBLE_BOOKING,
            f"patient {plan.patient_id} already holds an appointment at this time",
            {"appointmentIds": appointments, "inProgress": len(clash) - len(appointments)},
        )
    calendar.occupy(_patient_key(plan), plan.period)
    return plan


def _patient_key(plan: SagaPlan) -> str:
    """Under which key the plan reserves the patient's time: a booking's appointment id, which it keeps once
    settled (no confirmation step to rename it), or the saga's id (a move: the appointment holds its old time
    under its own id until the move settles)."""
    return plan.appointment_id if plan.patient_time_as_appointment else plan.id


def settle(cmd: c.SettleSaga, session: Session, finish: Finish) -> dict[str, Any]:
    """On the home's partition, once: `finish` (create or move the appointment) and confirm every step, or give
    back all."""
    plan = cmd.plan
    if plan.tenant != session.ctx.tenant:
        raise validation_error([{"field": "plan.tenant", "message": "another tenant's saga"}])
    waiting = _stop_waiting(session, plan)
    refusal: DomainError | None = None
    if not waiting:
        refusal = _refusal(plan, Failure.hold_expired(plan))
    elif cmd.failure is not None:
        refusal = _refusal(plan, cmd.failure)
    data: dict[str, Any] = {}
    if refusal is None:
        try:
            data = finish(session, plan)
        except DomainError as refused:  # raised before anything was saved
            refusal = _refusal(
                plan,
                Failure(code=refused.code.value, message=refused.message, details=refused.details, at=len(plan.steps)),
            )
    if refusal is not None:
        taken = plan.steps[: cmd.failure.at] if cmd.failure is not None and waiting else plan.steps
        for step in taken:
            by_saga = step.kind is not StepKind.PATIENT or not plan.patient_time_as_appointment
            _release_elsewhere(session, plan.appointment_id, step, plan.period, plan.id if by_saga else None)
        if plan.intent is Intent.BOOK:  # the home's slot, held since the booking started
            release_hold(session, plan.slot_id, plan.id, plan.appointment_id)
        elif waiting:
            _forget_move(session, plan)
    else:
        for at, step in enumerate(plan.steps):
            if step.kind is not StepKind.PATIENT or not plan.patient_time_as_appointment:
                session.follow_up(step.token, c.ConfirmSagaStep.NAME, {"plan": plan.dump(), "at": at})
    session.settle(plan.origin_caller, plan.origin_command, refusal)
    return data


def _stop_waiting(session: Session, plan: SagaPlan) -> bool:
    """Whether the plan was still waiting at its home (then it no longer is): it is settled once."""
    saga = session.saga(plan.home, plan.id)
    if saga is not None and saga.plan is not None:
        session.save_saga(saga.model_copy(update={"plan": None}))
        return True
    index = session.index(plan.home)  # a saga started before each had its own key
    if plan.id in index.sagas:
        session.save_index(index.model_copy(update={"sagas": {k: v for k, v in index.sagas.items() if k != plan.id}}))
        return True
    return False


def _refusal(plan: SagaPlan, failure: Failure) -> DomainError:
    fallback = ErrorCode.NEW_SLOT_NOT_AVAILABLE if plan.intent is Intent.MOVE else ErrorCode.SLOT_NOT_AVAILABLE
    if failure.expired:
        return DomainError(fallback, "the slots could not be held in time; nothing was changed", failure.details)
    code = ErrorCode(failure.code) if failure.code in ErrorCode.__members__ else ErrorCode.INTERNAL
    if plan.intent is Intent.MOVE:
        code = _MOVE_REFUSALS.get(code, code)
    return DomainError(code, failure.message, failure.details)


def _forget_move(session: Session, plan: SagaPlan) -> None:
    appointment = session.find(Appointment, plan.appointment_id)
    if appointment is not None and appointment.pending_move and appointment.pending_move.saga_id == plan.id:
        session.save(appointment.model_copy(update={"pending_move": None}))


def confirm(cmd: c.ConfirmSagaStep, session: Session) -> dict[str, Any]:
    """On a step's partition, after the home settled: a held seat becomes booked, the patient's time is the
    appointment's."""
    plan, step = cmd.plan, _step(session, cmd.plan, cmd.at)
    if step.kind is StepKind.PATIENT:
        assert plan.period is not None
        calendar = Calendar(session, step.token)
        calendar.vacate(plan.id, plan.period)
        if plan.old_period is not None:
            calendar.vacate(plan.appointment_id, plan.old_period)
        calendar.occupy(plan.appointment_id, plan.period)
        return {"sagaId": plan.id, "confirmed": cmd.at}
    slot = session.find(Slot, step.slot_id or "")
    if slot is None or not any(h.saga_id == plan.id for h in slot.holds):
        return {"sagaId": plan.id, "confirmed": None}  # confirmed before (a sweep and a settle may both confirm)
    confirm_seat(session, slot, plan)
    return {"sagaId": plan.id, "confirmed": cmd.at}


def release(cmd: c.ReleaseSagaStep, session: Session) -> dict[str, Any]:
    """On a step's partition: give back what a saga held there (`sagaId`), or what an appointment that moved
    or ended held there (a seat is freed and offered to the waitlist)."""
    step = cmd.step
    if step.kind is StepKind.PATIENT:
        if cmd.period is not None:
            Calendar(session, step.token).vacate(cmd.saga_id or cmd.appointment_id, cmd.period)
        return {"released": True}
    slot = session.find(Slot, step.slot_id or "")
    if slot is None or token_of(slot.id) != step.token:
        return {"released": False}
    if cmd.saga_id is not None:
        return {"released": release_hold(session, slot.id, cmd.saga_id, cmd.appointment_id)}
    freed = _give_back(session, slot, cmd.appointment_id)
    _offer_to_waitlist(session, freed)
    return {"released": freed is not None}


def pending_participants(appointment: Appointment, plan: SagaPlan) -> list[Participant]:
    """The participants after a move: the new resource first, then the others, then the other resources held."""
    first = [Participant(actor=plan.target.actor)] if plan.target is not None else appointment.participants[:1]
    rest = appointment.participants[1:]
    known = {p.actor for p in [*first, *rest]}
    return [*first, *rest, *(Participant(actor=a) for a in plan.actors if a not in known)]
