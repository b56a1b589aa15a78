"""Schedules a clinic can run for years (issue 12, CONTRACT section 9): update, deactivate, exceptions of both
kinds added and removed, voided slots, and the upkeep that keeps the slots in line with all of it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fakes import (
    MONDAY,
    InMemoryState,
    assert_refused,
    at,
    book,
    cmd,
    create_slot,
    event_types,
    iso,
    make_context,
    ok,
    pattern_body,
    schedule_body,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.calendar import Calendar
from domain.decisions import Decision
from domain.errors import ErrorCode
from domain.ids import token_of
from domain.model import Appointment, Period, Schedule, Slot, SlotStatus
from domain.resource import DayIndex, DaySlots
from domain.usecases.upkeep import offered, should_be_open

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


class Clinic:
    """A schedule with an hourly weekday pattern 09:00-12:00 UTC over `days` days from Monday."""

    def __init__(self, days: int = 7, capacity: int = 1, **extra: Any) -> None:
        self.state = InMemoryState()
        body = schedule_body(days=days, pattern=pattern_body(WEEKDAYS, minutes=60, capacity=capacity)) | extra
        self.schedule = ok(self.state.run(cmd("schedule.create", **body)))
        self.id = self.schedule["id"]

    def run(self, name: str, **body: Any) -> Decision:
        return self.state.run(cmd(name, **body))

    def final(self, decision: Decision) -> dict[str, Any]:
        """The caller's reply: the last part's, when the change was worked through in parts."""
        assert decision.ok, decision.reply()
        parts = [d for d in self.state.follow_up_decisions if d.data is not None and d.data.get("id") == self.id]
        data = parts[-1].data if decision.follow_ups and parts else decision.data
        assert data is not None
        return data

    def slots(self, status: str | None = None) -> list[Slot]:
        found = [s for s in self.state.all(Slot) if s.schedule_id == self.id]
        return sorted((s for s in found if status is None or s.status.value == status), key=lambda s: s.start)

    def slot_at(self, day: int, hour: int) -> Slot:
        return next(s for s in self.slots() if s.start == at(hour, day=day))

    def schedule_now(self) -> Schedule:
        return self.state.get(Schedule, self.id)


# --- VoidSlot -------------------------------------------------------------------------------------


def test_a_free_slot_is_voided_and_can_no_longer_be_booked() -> None:
    clinic = Clinic()
    slot = clinic.slot_at(0, 9)
    decision = clinic.run("slot.void", slotId=slot.id, reason="opened by mistake")
    assert ok(decision)["status"] == "entered-in-error"
    assert event_types(decision) == ["slot.updated"] and decision.events[0].data["reason"] == "opened by mistake"
    assert_refused(book(clinic.state, slot.id), ErrorCode.SLOT_NOT_AVAILABLE, 409)
    assert_refused(clinic.run("slot.void", slotId=slot.id), ErrorCode.INVALID_STATUS_TRANSITION, 409)
    assert create_slot(clinic.state, clinic.id, at(9, 15))["status"] == "free"  # its time can be used again


def test_a_held_slot_is_not_voided_and_its_appointment_is_named() -> None:
    clinic = Clinic()
    slot = clinic.slot_at(0, 10)
    appointment = ok(book(clinic.state, slot.id))
    error = assert_refused(clinic.run("slot.void", slotId=slot.id), ErrorCode.SLOT_NOT_AVAILABLE, 409)
    assert error["details"] == {"appointmentIds": [appointment["id"]]}
    assert_refused(clinic.run("slot.void", slotId="sl-nothing"), ErrorCode.SLOT_NOT_FOUND, 404)


# --- exceptions: ids, both kinds, removal -------------------------------------------------------


def test_removing_an_exception_reopens_exactly_the_slots_no_other_exception_covers() -> None:
    clinic = Clinic()
    holiday = clinic.final(clinic.run("schedule.add-exception", scheduleId=clinic.id, start=iso(at(0)),
                                      end=iso(at(0, day=1)), reason="holiday"))  # fmt: skip
    training = clinic.final(clinic.run("schedule.add-exception", scheduleId=clinic.id, start=iso(at(10)),
                                       end=iso(at(12)), reason="training"))  # fmt: skip
    assert holiday["exceptionId"] != training["exceptionId"]
    assert {s.status.value for s in clinic.slots() if s.start.day == MONDAY.day} == {"busy-unavailable"}
    removed = clinic.run("schedule.remove-exception", scheduleId=clinic.id, exceptionId=holiday["exceptionId"])
    data = ok(removed)
    assert [e["id"] for e in data["exceptions"]] == [training["exceptionId"]]
    assert event_types(removed) == ["schedule.updated", "slot.updated"]  # 09:00 only: training still covers 10, 11
    assert clinic.slot_at(0, 9).status is SlotStatus.FREE
    assert {clinic.slot_at(0, h).status for h in (10, 11)} == {SlotStatus.BUSY_UNAVAILABLE}
    unknown = clinic.run("schedule.remove-exception", scheduleId=clinic.id, exceptionId=holiday["exceptionId"])
    assert assert_refused(unknown, ErrorCode.VALIDATION_FAILED, 400)["details"][0]["field"] == "exceptionId"


def test_an_available_exception_opens_slots_and_removing_it_closes_the_free_ones() -> None:
    clinic = Clinic()
    saturday = MONDAY + timedelta(days=5)
    added = clinic.run("schedule.add-exception", scheduleId=clinic.id, kind="available",
                       start=iso(saturday + timedelta(hours=9)), end=iso(saturday + timedelta(hours=12)))  # fmt: skip
    data = ok(added)
    assert data["exception"]["kind"] == "available"
    opened = [s for s in clinic.slots() if s.start.date() == saturday.date()]
    assert [s.start.hour for s in opened] == [9, 10, 11] and {s.status for s in opened} == {SlotStatus.FREE}
    assert event_types(added) == ["slot.opened"] * 3
    appointment = ok(book(clinic.state, opened[0].id))
    removed = clinic.final(
        clinic.run("schedule.remove-exception", scheduleId=clinic.id, exceptionId=data["exceptionId"])
    )
    assert [c["id"] for c in removed["conflicts"]] == [appointment["id"]]
    assert [clinic.state.get(Slot, s.id).status.value for s in opened] == [
        "busy",
        "busy-unavailable",
        "busy-unavailable",
    ]


# --- DeactivateSchedule and reactivation ---------------------------------------------------------


def test_deactivation_closes_free_slots_lists_held_ones_and_reactivation_reopens_them() -> None:
    clinic = Clinic()
    held = ok(book(clinic.state, clinic.slot_at(1, 9).id))
    before = clinic.state.get(Appointment, held["id"])
    deactivated = clinic.run("schedule.deactivate", scheduleId=clinic.id, expectedVersion=1)
    data = clinic.final(deactivated)
    assert data["active"] is False and [c["id"] for c in data["conflicts"]] == [held["id"]]
    assert event_types(deactivated)[0] == "schedule.updated"
    assert {s.status.value for s in clinic.slots()} == {"busy-unavailable", "busy"}
    assert clinic.state.get(Appointment, held["id"]) == before
    assert_refused(book(clinic.state, clinic.slot_at(2, 9).id), ErrorCode.SLOT_NOT_AVAILABLE, 409)
    stale = clinic.run("schedule.deactivate", scheduleId=clinic.id, expectedVersion=1)
    assert_refused(stale, ErrorCode.OPTIMISTIC_LOCK_CONFLICT, 409)
    clinic.final(clinic.run("schedule.update", scheduleId=clinic.id, active=True))
    assert {s.status.value for s in clinic.slots()} == {"free", "busy"}


# --- UpdateSchedule ------------------------------------------------------------------------------


def test_extending_the_horizon_opens_the_patterns_new_slots_in_parts() -> None:
    clinic = Clinic(days=30)
    assert len(clinic.slots()) == 22 * 3  # 22 weekdays from Monday 2 March
    horizon = {"start": iso(MONDAY), "end": iso(MONDAY + timedelta(days=200))}
    decision = clinic.run("schedule.update", scheduleId=clinic.id, planningHorizon=horizon)
    assert decision.follow_ups  # 122 more weekdays, 366 slots: more than one part
    data = clinic.final(decision)
    assert clinic.schedule_now().planning_horizon.end == MONDAY + timedelta(days=200) and data["conflicts"] == []
    assert len(clinic.slots("free")) == 144 * 3  # 28 weeks and Monday to Thursday


def test_shortening_the_horizon_closes_free_slots_beyond_it_and_lists_held_ones() -> None:
    clinic = Clinic(days=14)
    late = ok(book(clinic.state, clinic.slot_at(10, 9).id))
    horizon = {"start": iso(MONDAY), "end": iso(MONDAY + timedelta(days=7))}
    data = clinic.final(clinic.run("schedule.update", scheduleId=clinic.id, planningHorizon=horizon))
    assert [c["id"] for c in data["conflicts"]] == [late["id"]]
    after = [s for s in clinic.slots() if s.start >= MONDAY + timedelta(days=7)]
    assert {s.status.value for s in after} == {"busy-unavailable", "busy"}


def test_a_new_pattern_applies_from_its_date_and_earlier_slots_stay() -> None:
    clinic = Clinic(days=14)
    kept = ok(book(clinic.state, clinic.slot_at(8, 11).id))  # Tuesday of week two, 11:00
    since = MONDAY + timedelta(days=7)
    afternoons = pattern_body(WEEKDAYS, "14:00", "16:00", minutes=60)
    decision = clinic.run("schedule.update", scheduleId=clinic.id, availabilityPattern=afternoons,
                          patternEffectiveFrom=iso(since))  # fmt: skip
    data = clinic.final(decision)
    assert clinic.schedule_now().pattern_effective_from == since and [c["id"] for c in data["conflicts"]] == [
        kept["id"]
    ]
    week_one = [s for s in clinic.slots() if s.start < since]
    assert {s.start.hour for s in week_one} == {9, 10, 11} and {s.status for s in week_one} == {SlotStatus.FREE}
    week_two_open = {(s.start.day, s.start.hour) for s in clinic.slots("free") if s.start >= since}
    assert {hour for _, hour in week_two_open} == {14, 15} and len(week_two_open) == 10
    assert clinic.slot_at(8, 11).status is SlotStatus.BUSY


def test_service_type_location_and_policy_follow_the_schedule() -> None:
    clinic = Clinic()
    data = clinic.final(clinic.run("schedule.update", scheduleId=clinic.id, serviceType="vaccination",
                                   locationId="Location/annex", bookingPolicy={"minNoticeMinutes": 0}))  # fmt: skip
    assert (data["serviceType"], data["locationId"], data["bookingPolicy"]) == (
        "vaccination", "Location/annex", {"minNoticeMinutes": 0})  # fmt: skip
    assert {(s.service_type, s.location_id) for s in clinic.slots()} == {("vaccination", "Location/annex")}
    policy_only = clinic.run("schedule.update", scheduleId=clinic.id, bookingPolicy={"minNoticeMinutes": 5})
    assert event_types(policy_only) == ["schedule.updated"]


def test_update_refuses_what_it_cannot_mean() -> None:
    clinic = Clinic()
    alone = clinic.run("schedule.update", scheduleId=clinic.id, patternEffectiveFrom=iso(MONDAY))
    assert assert_refused(alone, ErrorCode.VALIDATION_FAILED, 400)["details"][0]["field"] == "patternEffectiveFrom"
    stale = clinic.run("schedule.update", scheduleId=clinic.id, serviceType="x", expectedVersion=9)
    assert_refused(stale, ErrorCode.OPTIMISTIC_LOCK_CONFLICT, 409)
    assert_refused(clinic.run("schedule.update", scheduleId="sc-x", active=True), ErrorCode.SCHEDULE_NOT_FOUND, 404)


# --- the invariant, for any sequence of changes -------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("exception"), st.integers(0, 4), st.integers(8, 12), st.integers(1, 4),
                  st.sampled_from(["unavailable", "available"])),
        st.tuples(st.just("remove"), st.integers(0, 5)),
        st.tuples(st.just("book"), st.integers(0, 40)),
        st.tuples(st.just("cancel"), st.integers(0, 40)),
        st.tuples(st.just("active"), st.booleans()),
        st.tuples(st.just("horizon"), st.integers(2, 7)),
        st.tuples(st.just("void"), st.integers(0, 40)),
    ),
    max_size=14,
)  # fmt: skip


@settings(max_examples=120, deadline=None, database=None)
@given(ops=OPS)
@example(
    ops=[
        ("book", 29),
        ("cancel", 18),
        ("exception", 0, 12, 3, "available"),
        ("horizon", 6),
        ("book", 5),
        ("remove", 0),
        ("cancel", 1),
        ("cancel", 21),
    ]
)  # a slot of a removed override freed by a cancel
def test_slots_always_match_the_schedule_and_held_appointments_are_never_touched(ops: list[tuple[Any, ...]]) -> None:
    clinic = Clinic(days=7, capacity=2)  # two seats per slot: seats are part of every step
    exception_ids: list[str] = []
    appointments: dict[str, Appointment] = {}
    for op in ops:
        slots = clinic.slots()
        match op:
            case ("exception", day, hour, hours, kind):
                start = at(hour, day=day)
                decision = clinic.run("schedule.add-exception", scheduleId=clinic.id, kind=kind, start=iso(start),
                                      end=iso(start + timedelta(hours=hours)))  # fmt: skip
                if decision.ok:
                    exception_ids.append(str(decision.data["exceptionId"]) if decision.data else "")
            case ("remove", i) if exception_ids:
                clinic.run("schedule.remove-exception", scheduleId=clinic.id,
                           exceptionId=exception_ids.pop(i % len(exception_ids)))  # fmt: skip
            case ("book", i) if slots:
                decision = book(clinic.state, slots[i % len(slots)].id, f"pat-{i}")
                if decision.ok and decision.data:
                    appointments[decision.data["id"]] = clinic.state.get(Appointment, decision.data["id"])
            case ("cancel", i) if appointments:
                aid = sorted(appointments)[i % len(appointments)]
                if clinic.run("appointment.cancel", appointmentId=aid).ok:
                    appointments[aid] = clinic.state.get(Appointment, aid)
            case ("active", active):
                clinic.run("schedule.update", scheduleId=clinic.id, active=active)
            case ("horizon", days):
                horizon = {"start": iso(MONDAY), "end": iso(MONDAY + timedelta(days=days))}
                clinic.run("schedule.update", scheduleId=clinic.id, planningHorizon=horizon)
            case ("void", i) if slots:
                clinic.run("slot.void", slotId=slots[i % len(slots)].id)
        # no schedule change ever touches an appointment: each is as its own last command left it
        for aid, expected in appointments.items():
            assert clinic.state.get(Appointment, aid) == expected
        _slots_match_the_schedule(clinic)


def _slots_match_the_schedule(clinic: Clinic) -> None:
    schedule = clinic.schedule_now()
    session_calendar = Calendar(_Reader(clinic.state), token_of(clinic.id))
    for slot in clinic.slots():
        if slot.status is SlotStatus.ENTERED_IN_ERROR:
            continue
        holders = session_calendar.holders(slot)
        assert slot.booked == len(holders) <= slot.capacity, slot  # never more appointments than seats
        if len(holders) == slot.capacity:
            assert slot.status in (SlotStatus.BUSY, SlotStatus.BUSY_TENTATIVE), slot
            continue
        wanted = offered(schedule, _day(slot.start.replace(hour=0, minute=0)))
        assert (slot.status is SlotStatus.FREE) == should_be_open(schedule, slot, wanted), (slot, schedule)
    # every slot the definition opens exists, unless another slot of the schedule already covers its time
    taken = [s.period for s in clinic.slots() if s.status is not SlotStatus.ENTERED_IN_ERROR]
    for day in range(7):
        for slot_id, (period, _) in offered(schedule, _day(MONDAY + timedelta(days=day))).items():
            assert ("slot", slot_id) in clinic.state.entities or any(period.overlaps(p) for p in taken)


def _day(start: datetime) -> Period:
    return Period(start=start, end=start + timedelta(days=1))


class _Reader:
    """The calendar's read side over the in-memory state (the holder of a slot)."""

    def __init__(self, state: InMemoryState) -> None:
        self._state = state

    def day(self, token: str, day: date) -> DayIndex:
        return self._state.day(token, day) or DayIndex(token=token, day=day)

    def day_slots(self, token: str, day: date) -> DaySlots:
        return self._state.day_slots(token, day) or DaySlots(token=token, day=day)


@pytest.mark.parametrize("kind", ["unavailable", "available"])
def test_an_exception_of_either_kind_needs_the_horizon(kind: str) -> None:
    clinic = Clinic()
    outside = clinic.run("schedule.add-exception", scheduleId=clinic.id, kind=kind,
                         start=iso(at(9, day=30)), end=iso(at(12, day=30)))  # fmt: skip
    assert_refused(outside, ErrorCode.VALIDATION_FAILED, 400)


# --- buffers and the daily limit ----------------------------------------------------------------


def test_a_buffer_keeps_the_resources_appointments_apart_unless_overridden() -> None:
    clinic = Clinic(bookingPolicy={"bufferAfterMinutes": 30})
    first = ok(book(clinic.state, clinic.slot_at(0, 9).id))
    close = book(clinic.state, clinic.slot_at(0, 10).id, "pat-2")  # starts right after 09:00-10:00 ends
    error = assert_refused(close, ErrorCode.DOUBLE_BOOKING_DETECTED, 409)
    assert error["details"] == {"appointmentIds": [first["id"]], "rule": "buffer"}
    ok(book(clinic.state, clinic.slot_at(0, 11).id, "pat-3"))  # an hour later: outside the buffer
    overriding = make_context(scopes=("scheduling:write", "scheduling:double-book"))
    ok(clinic.state.run(cmd("appointment.book", slotId=clinic.slot_at(0, 10).id, patientId="pat-2",
                            allowDoubleBooking=True), overriding))  # fmt: skip


def test_the_daily_limit_counts_the_local_day_of_the_schedule() -> None:
    clinic = Clinic(bookingPolicy={"maxPerDay": 2})
    ok(book(clinic.state, clinic.slot_at(0, 9).id))
    ok(book(clinic.state, clinic.slot_at(0, 10).id, "pat-2"))
    error = assert_refused(book(clinic.state, clinic.slot_at(0, 11).id, "pat-3"), ErrorCode.BOOKING_LIMIT_REACHED, 409)
    assert error["details"] == {"maxPerDay": 2, "day": "2026-03-02"}
    ok(book(clinic.state, clinic.slot_at(1, 9).id, "pat-3"))  # the next day has room
    appointment = next(a for a in clinic.state.all(Appointment) if a.start.day == MONDAY.day)
    ok(clinic.run("appointment.cancel", appointmentId=appointment.id))
    ok(book(clinic.state, clinic.slot_at(0, 11).id, "pat-3"))  # a cancellation frees a place


# --- seats ---------------------------------------------------------------------------------------


def test_a_group_session_takes_its_capacity_and_is_busy_only_when_full() -> None:
    clinic = Clinic()
    session = create_slot(clinic.state, clinic.id, at(14), capacity=5)
    assert (session["capacity"], session["booked"]) == (5, 0)
    patients = [ok(book(clinic.state, session["id"], f"pat-{i}")) for i in range(5)]  # seats: no double booking
    full = clinic.state.get(Slot, session["id"])
    assert (full.status, full.booked) == (SlotStatus.BUSY, 5)
    assert_refused(book(clinic.state, session["id"], "pat-6"), ErrorCode.SLOT_NOT_AVAILABLE, 409)
    ok(clinic.run("appointment.cancel", appointmentId=patients[2]["id"]))
    again = clinic.state.get(Slot, session["id"])
    assert (again.status, again.booked) == (SlotStatus.FREE, 4)
    assert_refused(clinic.run("slot.void", slotId=session["id"]), ErrorCode.SLOT_NOT_AVAILABLE, 409)


def test_seats_are_one_occupancy_and_another_slot_at_that_time_is_a_double_booking() -> None:
    clinic = Clinic()
    group = create_slot(clinic.state, clinic.id, at(14), capacity=3)
    ok(book(clinic.state, group["id"], "pat-1"))
    schedule_two = ok(clinic.state.run(cmd("schedule.create", **schedule_body())))
    overlapping = create_slot(clinic.state, schedule_two["id"], at(14, 15))
    assert_refused(book(clinic.state, overlapping["id"], "pat-2"), ErrorCode.DOUBLE_BOOKING_DETECTED, 409)
    ok(book(clinic.state, group["id"], "pat-2"))


def test_a_pattern_opens_slots_with_its_capacity() -> None:
    state = InMemoryState()
    body = schedule_body(days=1, pattern=pattern_body(["mon"], "09:00", "10:00", minutes=60, capacity=4))
    ok(state.run(cmd("schedule.create", **body)))
    assert [s.capacity for s in state.all(Slot)] == [4]


def test_a_cancelled_booking_does_not_reopen_a_slot_whose_override_is_gone() -> None:
    clinic = Clinic()
    saturday = MONDAY + timedelta(days=5)
    hours = {"start": iso(saturday + timedelta(hours=9)), "end": iso(saturday + timedelta(hours=10))}
    added = ok(clinic.run("schedule.add-exception", scheduleId=clinic.id, kind="available", **hours))
    (slot,) = [s for s in clinic.slots() if s.start.date() == saturday.date()]
    appointment = ok(book(clinic.state, slot.id))
    clinic.final(clinic.run("schedule.remove-exception", scheduleId=clinic.id, exceptionId=added["exceptionId"]))
    ok(clinic.run("appointment.cancel", appointmentId=appointment["id"]))
    assert clinic.state.get(Slot, slot.id).status is SlotStatus.BUSY_UNAVAILABLE
