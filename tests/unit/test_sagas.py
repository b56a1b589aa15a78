"""Bookings and moves across resources (domain/usecases/sagas.py), step by step: what each partition holds
between the steps, refusals, expiry, forged plans."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fakes import (
    OTHER_TENANT,
    TENANT,
    InMemoryState,
    assert_refused,
    at,
    cmd,
    create_schedule,
    create_slot,
    make_context,
    ok,
)

from domain.errors import DomainError, ErrorCode
from domain.ids import resource_token, token_of
from domain.model import Appointment, Slot
from domain.resource import ResourceIndex, WaitingSaga, saga_key
from domain.usecases.seats import patient_token

ROOM = "Location/room-1"


class Clinic:
    """A practitioner with two slots, a room with two slots at the same times, a second practitioner."""

    def __init__(self) -> None:
        self.state = InMemoryState()
        doctor = create_schedule(self.state)
        room = create_schedule(self.state, actor=ROOM, actor_type="Location")
        other = create_schedule(self.state, actor="Practitioner/p2")
        self.doctor = [create_slot(self.state, doctor["id"], at(9, 30 * i))["id"] for i in range(2)]
        self.room = [create_slot(self.state, room["id"], at(9, 30 * i))["id"] for i in range(2)]
        self.other = [create_slot(self.state, other["id"], at(14, 30 * i))["id"] for i in range(2)]

    def slot(self, slot_id: str) -> Slot:
        return self.state.get(Slot, slot_id)

    def patient_times(self, patient: str) -> dict[str, Any]:
        return dict(self.state.calendar(patient_token(TENANT, patient)).appointments)


@pytest.fixture
def clinic() -> Clinic:
    return Clinic()


def test_a_booking_holds_the_patients_time_on_its_partition_then_settles_at_home(clinic: Clinic) -> None:
    command = cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1")
    started = clinic.state.run(command, follow=False)
    assert started.ok and started.pending and started.events == []
    ((hold,),) = [started.follow_ups]
    assert (hold.command, hold.token, hold.carries_reply) == ("saga.hold", patient_token(TENANT, "pat-1"), True)
    saga_id = hold.body["plan"]["id"]
    waiting = clinic.state.saga(token_of(clinic.doctor[0]), saga_id)  # beside the home's index
    assert waiting is not None and waiting.plan is not None and waiting.plan.id == saga_id
    held = clinic.slot(clinic.doctor[0])  # held from the start: a rival booking is refused at once
    assert (held.status.value, [h.saga_id for h in held.holds]) == ("busy-tentative", [hold.body["plan"]["id"]])
    rival = clinic.state.run(cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-2"))
    assert_refused(rival, ErrorCode.SLOT_NOT_AVAILABLE, 409)

    settled = clinic.state.follow(hold)
    appointment = ok(settled)
    assert settled.answers is not None and [e.type for e in settled.events] == ["appointment.created"]
    assert clinic.slot(clinic.doctor[0]).status.value == "busy"
    assert set(clinic.patient_times("pat-1")) == {appointment["id"]}
    ended = clinic.state.saga(token_of(clinic.doctor[0]), saga_id)
    assert ended is not None and ended.plan is None


def test_a_booking_reserves_the_patients_time_as_its_appointment_and_needs_no_confirmation(clinic: Clinic) -> None:
    (hold,) = clinic.state.run(
        cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1"), follow=False
    ).follow_ups
    appointment_id = hold.body["plan"]["appointmentId"]
    (settle,) = clinic.state.follow(hold, follow=False).follow_ups
    assert clinic.patient_times("pat-1") == {appointment_id: clinic.slot(clinic.doctor[0]).period}
    rival = clinic.state.run(cmd("appointment.book", slotId=clinic.other[0], patientId="pat-1"))
    assert rival.ok  # another time: the patient's reservation covers only its own
    settled = clinic.state.follow(settle, follow=False)
    assert ok(settled)["id"] == appointment_id
    assert settled.follow_ups == []  # nothing more to do at the patient's partition
    assert set(clinic.patient_times("pat-1")) == {appointment_id, ok(rival)["id"]}


def test_a_booking_started_before_the_patients_time_was_reserved_as_its_appointment_is_confirmed(
    clinic: Clinic,
) -> None:
    (hold,) = clinic.state.run(
        cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1"), follow=False
    ).follow_ups
    hold.body["plan"]["patientTimeAsAppointment"] = False  # a plan as written before: the saga's id holds the time
    (settle,) = clinic.state.follow(hold, follow=False).follow_ups
    assert set(clinic.patient_times("pat-1")) == {hold.body["plan"]["id"]}
    settled = clinic.state.follow(settle, follow=False)
    (confirm,) = settled.follow_ups
    assert confirm.command == "saga.confirm"
    clinic.state.follow(confirm)
    assert set(clinic.patient_times("pat-1")) == {ok(settled)["id"]}


def test_a_booking_given_up_after_its_patient_step_gives_the_patients_time_back(clinic: Clinic) -> None:
    (hold,) = clinic.state.run(
        cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1"), follow=False
    ).follow_ups
    plan = hold.body["plan"]
    clinic.state.follow(hold, follow=False)  # the patient's time is taken; the settlement is late
    assert clinic.patient_times("pat-1") != {}
    expired = {"code": "", "message": "", "details": {"reason": "hold-expired"}, "at": len(plan["steps"])}
    swept = clinic.state.run(cmd("saga.settle", plan=plan, failure=expired), make_context(scopes=()))
    assert swept.error is not None and swept.error.code is ErrorCode.SLOT_NOT_AVAILABLE
    assert clinic.patient_times("pat-1") == {} and clinic.slot(clinic.doctor[0]).status.value == "free"


def test_another_callers_booking_with_a_command_id_in_progress_is_refused(clinic: Clinic) -> None:
    first = cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1")
    ctx = make_context(command_id="same-key")
    (hold,) = clinic.state.run(first, ctx, follow=False).follow_ups
    other = make_context(command_id="same-key", subject="user-2")  # the same key from another caller
    second = clinic.state.run(cmd("appointment.book", slotId=clinic.doctor[1], patientId="pat-1"), other)
    error = assert_refused(second, ErrorCode.VALIDATION_FAILED, 400)
    assert error["details"] == [{"field": "commandId", "message": "already used for a booking or move in progress"}]
    appointment = ok(clinic.state.follow(hold))
    assert set(clinic.patient_times("pat-1")) == {appointment["id"]}  # the first keeps the patient's time


def test_a_room_is_held_then_confirmed_with_the_appointment(clinic: Clinic) -> None:
    command = cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1", additionalSlotIds=[clinic.room[0]])
    started = clinic.state.run(command, follow=False)
    (hold,) = started.follow_ups
    assert hold.token == token_of(clinic.room[0])
    (patient_step,) = clinic.state.follow(hold, follow=False).follow_ups  # only the room's step
    held = clinic.slot(clinic.room[0])
    saga = hold.body["plan"]["id"]
    assert (held.status.value, held.booked, [h.saga_id for h in held.holds]) == ("busy-tentative", 1, [saga])

    appointment = ok(clinic.state.follow(patient_step))
    confirmed = clinic.slot(clinic.room[0])
    assert (confirmed.status.value, confirmed.booked, confirmed.holds) == ("busy", 1, [])
    assert appointment["additionalSlotIds"] == [clinic.room[0]]
    assert {"reference": ROOM, "type": "Location"} in [p["actor"] for p in appointment["participants"]]
    assert clinic.state.calendar(token_of(clinic.room[0])).holders == {clinic.room[0]: [appointment["id"]]}


def test_a_step_that_refuses_gives_back_what_the_others_held(clinic: Clinic) -> None:
    ok(clinic.state.run(cmd("appointment.book", slotId=clinic.other[0], patientId="pat-9")))
    command = cmd(
        "appointment.book",
        slotId=clinic.doctor[0],
        patientId="pat-1",
        additionalSlotIds=[clinic.room[0], clinic.other[0]],
    )
    refused = clinic.state.run(command)
    assert refused.error is not None and refused.error.code is ErrorCode.SLOT_NOT_AVAILABLE
    assert refused.events == [] and refused.answers is not None
    assert [(s.status.value, s.booked, s.holds) for s in map(clinic.slot, (clinic.room[0], clinic.doctor[0]))] == [
        ("free", 0, []),
        ("free", 0, []),
    ]
    assert clinic.state.all(Appointment)[0].patient_id == "pat-9"  # nothing created for pat-1
    assert clinic.patient_times("pat-1") == {}


def test_a_saga_still_waiting_at_its_expiry_is_given_up_and_a_late_step_given_back(clinic: Clinic) -> None:
    command = cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1", additionalSlotIds=[clinic.room[0]])
    (hold,) = clinic.state.run(command, follow=False).follow_ups
    plan = hold.body["plan"]
    expired = {"code": "", "message": "", "details": {"reason": "hold-expired"}, "at": len(plan["steps"])}
    swept = clinic.state.run(cmd("saga.settle", plan=plan, failure=expired), make_context(scopes=()))
    error = swept.error
    assert error is not None and (error.code, error.details) == (
        ErrorCode.SLOT_NOT_AVAILABLE,
        {"reason": "hold-expired"},
    )

    late = clinic.state.follow(hold)  # the room's step arrives after: held, passed on, and given back at home
    assert late.error is not None and late.error.details == {"reason": "hold-expired"}
    assert (clinic.slot(clinic.room[0]).status.value, clinic.slot(clinic.room[0]).holds) == ("free", [])
    assert clinic.state.all(Appointment) == [] and clinic.patient_times("pat-1") == {}


def test_a_patient_time_that_overlaps_is_refused_and_the_override_books_it(clinic: Clinic) -> None:
    first = ok(clinic.state.run(cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1")))
    clash = cmd("appointment.book", slotId=clinic.room[0], patientId="pat-1")
    refused = clinic.state.run(clash)
    assert refused.error is not None and refused.error.code is ErrorCode.PATIENT_DOUBLE_BOOKING
    assert refused.error.details == {"appointmentIds": [first["id"]], "inProgress": 0}
    allowed = cmd("appointment.book", slotId=clinic.room[0], patientId="pat-1", allowDoubleBooking=True)
    assert ok(clinic.state.run(allowed, make_context(scopes=("scheduling:write", "scheduling:double-book"))))
    assert len(clinic.patient_times("pat-1")) == 2


def test_a_move_to_another_practitioner_and_its_pending_state(clinic: Clinic) -> None:
    booked = ok(clinic.state.run(cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1")))
    move = cmd("appointment.reschedule", appointmentId=booked["id"], newSlotId=clinic.other[0])
    started = clinic.state.run(move, follow=False)
    pending = clinic.state.get(Appointment, booked["id"]).pending_move
    assert pending is not None and pending.slot_id == clinic.other[0]
    again = clinic.state.run(cmd("appointment.reschedule", appointmentId=booked["id"], newSlotId=clinic.other[1]))
    error = assert_refused(again, ErrorCode.INVALID_STATUS_TRANSITION, 409)
    assert error["details"]["reason"] == "move-pending"

    (hold,) = started.follow_ups
    moved = ok(clinic.state.follow(hold))
    assert (moved["slotId"], moved["providerId"], "pendingMove" in moved) == (clinic.other[0], "Practitioner/p2", False)
    assert clinic.slot(clinic.doctor[0]).status.value == "free" and clinic.slot(clinic.other[0]).status.value == "busy"
    assert set(clinic.patient_times("pat-1").values()) == {clinic.slot(clinic.other[0]).period}

    # cancelled where it lives (the first practitioner's partition): the other's slot and the time are given back
    ok(clinic.state.run(cmd("appointment.cancel", appointmentId=booked["id"])))
    assert clinic.slot(clinic.other[0]).status.value == "free" and clinic.patient_times("pat-1") == {}


def test_a_move_cancelled_while_pending_ends_refused_and_gives_the_target_back(clinic: Clinic) -> None:
    booked = ok(clinic.state.run(cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1")))
    move = cmd("appointment.reschedule", appointmentId=booked["id"], newSlotId=clinic.other[0])
    (hold,) = clinic.state.run(move, follow=False).follow_ups
    ok(clinic.state.run(cmd("appointment.cancel", appointmentId=booked["id"])))
    ended = clinic.state.follow(hold)
    assert ended.error is not None and ended.error.code is ErrorCode.INVALID_STATUS_TRANSITION
    assert (clinic.slot(clinic.other[0]).status.value, clinic.slot(clinic.other[0]).holds) == ("free", [])
    assert clinic.state.get(Appointment, booked["id"]).pending_move is None


@pytest.mark.parametrize(
    "additional",
    [["same", "same"], ["main"], [f"sl-{'0' * 12}-{i}" for i in range(6)]],
    ids=["twice", "the-main-slot", "more-than-five"],
)
def test_additional_slots_must_be_few_distinct_and_other_than_the_main_one(
    clinic: Clinic, additional: list[str]
) -> None:
    named = [{"same": clinic.room[0], "main": clinic.doctor[0]}.get(s, s) for s in additional]
    try:
        command = cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1", additionalSlotIds=named)
    except DomainError as refused:  # more than five: refused as the bridge parses the body
        assert refused.code is ErrorCode.VALIDATION_FAILED and refused.details[0]["field"] == "additionalSlotIds"
        return
    error = assert_refused(clinic.state.run(command), ErrorCode.VALIDATION_FAILED, 400)
    assert error["details"][0]["field"] == "additionalSlotIds"


@pytest.mark.parametrize("name", ["saga.hold", "saga.settle", "saga.confirm"])
def test_a_plan_of_another_tenant_is_refused_on_the_topic(clinic: Clinic, name: str) -> None:
    command = cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1", additionalSlotIds=[clinic.room[0]])
    (hold,) = clinic.state.run(command, follow=False).follow_ups
    before = clinic.state.copy()
    body = {"plan": hold.body["plan"]} | ({} if name == "saga.settle" else {"at": 0})
    forged = clinic.state.run(cmd(name, **body), make_context(tenant=OTHER_TENANT))
    assert_refused(forged, ErrorCode.VALIDATION_FAILED, 400)
    assert clinic.state.entities == before.entities and clinic.state.indexes == before.indexes


def test_a_release_of_what_was_never_held_changes_nothing(clinic: Clinic) -> None:
    step = {"kind": "slot", "token": token_of(clinic.room[0]), "slotId": clinic.room[0]}
    decision = clinic.state.run(cmd("saga.release", appointmentId="ap-x", step=step, sagaId="nobody:x"))
    assert ok(decision) == {"released": False} and decision.changes == []
    assert resource_token(TENANT, ROOM) == token_of(clinic.room[0])


def test_the_hold_expires_after_the_configured_time(clinic: Clinic) -> None:
    ctx = replace(make_context(), hold_for=timedelta(seconds=30))
    (hold,) = clinic.state.run(
        cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1"), ctx, follow=False
    ).follow_ups
    assert hold.body["plan"]["expiresAt"] == (ctx.now + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")


def test_a_saga_started_before_each_had_its_own_key_is_still_settled_once(clinic: Clinic) -> None:
    """Plans written into the home's resource index (before issue 10's change) are found and settled there."""
    started = clinic.state.run(cmd("appointment.book", slotId=clinic.doctor[0], patientId="pat-1"), follow=False)
    ((hold,),) = [started.follow_ups]
    home, saga_id = token_of(clinic.doctor[0]), hold.body["plan"]["id"]
    waiting = clinic.state.indexes.pop(saga_key(home, saga_id))
    assert isinstance(waiting, WaitingSaga) and waiting.plan is not None
    index = clinic.state.resource(home) or ResourceIndex(token=home)
    clinic.state.indexes[home] = index.model_copy(
        update={"sagas": {saga_id: waiting.plan}, "version": index.version + 1}
    )

    appointment = ok(clinic.state.follow(hold))
    assert clinic.slot(clinic.doctor[0]).status.value == "busy" and appointment["slotId"] == clinic.doctor[0]
    legacy = clinic.state.resource(home)
    assert legacy is not None and legacy.sagas == {}
