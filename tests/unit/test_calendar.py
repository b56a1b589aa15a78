"""The resource calendar is bucketed by day: overlaps across midnight, bounded writes per booking."""

from __future__ import annotations

import json
from datetime import timedelta

from fakes import (
    MONDAY,
    InMemoryState,
    assert_refused,
    at,
    book,
    cmd,
    create_schedule,
    create_slot,
    iso,
    ok,
    pattern_body,
    schedule_body,
)

from domain.errors import ErrorCode
from domain.model import Slot, SlotStatus
from domain.resource import DayIndex, DaySlots, day_key
from domain.usecases import SLOTS_PER_DECISION
from scheduling.core.wire import Claims, CommandEnvelope, DecisionRecord


def test_an_appointment_across_midnight_blocks_an_overlapping_slot_of_the_next_day() -> None:
    state = InMemoryState()
    first = create_schedule(state)
    second = create_schedule(state)  # same practitioner, another schedule
    late = create_slot(state, first["id"], at(23, 30), minutes=60)  # 23:30 -> 00:30 next day
    early = create_slot(state, second["id"], at(0, 0, day=1), minutes=30)  # 00:00 -> 00:30
    ok(book(state, late["id"]))
    assert_refused(book(state, early["id"], "pat-2"), ErrorCode.DOUBLE_BOOKING_DETECTED, 409)


def test_a_slot_longer_than_a_day_is_refused() -> None:
    state = InMemoryState()
    schedule = create_schedule(state)
    command = cmd(
        "slot.create", scheduleId=schedule["id"], start=iso(at(9)), end=iso(at(9, day=1) + timedelta(minutes=1))
    )
    refusal = assert_refused(state.run(command), ErrorCode.VALIDATION_FAILED, 400)
    assert refusal["details"][0]["field"] == "end"


def test_a_booking_writes_one_day_bucket_not_the_whole_calendar() -> None:
    state = InMemoryState()
    schedule = create_schedule(
        state, days=90, pattern=pattern_body(["mon", "tue", "wed", "thu", "fri"], "08:00", "16:00", minutes=15)
    )
    assert schedule["slotCount"] == 65 * 32  # 65 weekdays in 90 days from a Monday
    slot_id = next(eid for kind, eid in state.entities if kind == "slot")
    decision = state.run(cmd("appointment.book", slotId=slot_id, patientId="pat-1"), follow=False)
    assert decision.ok
    buckets = [i for i in decision.indexes if isinstance(i, DayIndex)]
    # the booking holds the slot: one day bucket, and its saga beside the resource's index
    assert len(buckets) == 1 and len(decision.indexes) == 2
    assert not [i for i in decision.indexes if isinstance(i, DaySlots)]  # the day's 32 slots are not rewritten
    assert len(json.dumps(buckets[0].model_dump(mode="json"))) < 1_000


def test_slots_a_day_index_held_before_day_slots_are_read_and_move_out_with_its_next_write() -> None:
    state = InMemoryState()
    schedule = create_schedule(state)
    first = create_slot(state, schedule["id"], at(9))
    (slots,) = [i for i in state.indexes.values() if isinstance(i, DaySlots)]
    del state.indexes[slots.key]  # the older form: the day's slots inside its day index
    state.indexes[day_key(slots.token, slots.day)] = DayIndex(token=slots.token, day=slots.day, slots=slots.slots)
    second = create_slot(state, schedule["id"], at(10))
    assert_refused(
        state.run(cmd("slot.create", scheduleId=schedule["id"], start=iso(at(9)), end=iso(at(9, 30)))),
        ErrorCode.VALIDATION_FAILED,
        400,
    )  # the older slot still overlaps
    day = state.day(slots.token, slots.day)
    assert day is not None and set(day.slots) == {first["id"]}  # a new slot is not added to it
    ok(book(state, first["id"]))
    ok(book(state, second["id"], "pat-2"))
    day = state.day(slots.token, slots.day)
    assert day is not None and day.slots == {}  # the booking's write moved them out
    assert set(day.holders) == {first["id"], second["id"]}
    assert set(state.calendar(slots.token).slots) == {first["id"], second["id"]}


def test_slot_search_by_exact_time_finds_the_portal_slot_in_its_bucket() -> None:
    state = InMemoryState()
    create_schedule(state, pattern=pattern_body(["mon"], "09:00", "10:00", minutes=30))
    start = MONDAY + timedelta(hours=9, minutes=30)
    decision = state.run(
        cmd(
            "portal.appointment.requested",
            requestId="r-1",
            patientId="pat-1",
            providerId="Practitioner/p1",
            start=iso(start),
            end=iso(start + timedelta(minutes=30)),
            serviceType="consultation",
        )
    )
    assert ok(decision)["status"] == "proposed" and ok(decision)["start"] == iso(start).replace("+00:00", "Z")


def test_a_long_pattern_is_opened_in_small_parts_and_the_last_part_answers() -> None:

    state = InMemoryState()
    body = schedule_body(
        days=90, pattern=pattern_body(["mon", "tue", "wed", "thu", "fri"], "08:00", "16:00", minutes=15)
    )
    first = state.run(cmd("schedule.create", **body))
    assert len([e for e in first.events if e.type == "slot.opened"]) == SLOTS_PER_DECISION
    assert [(f.command, f.carries_reply) for f in first.follow_ups] == [("schedule.open-slots", True)]
    parts = [first, *state.follow_up_decisions]
    assert len(parts) == -(-2080 // SLOTS_PER_DECISION)
    opened = [e.data["id"] for part in parts for e in part.events if e.type == "slot.opened"]
    assert len(opened) == len(set(opened)) == 2080
    assert all(part.data == first.data for part in parts) and first.data["slotCount"] == 2080

    env = CommandEnvelope(
        delivery_id="d", command_id="c", type="schedule.create", body={}, claims=Claims(tenant="t1"), reply_to="inbox"
    )
    record = DecisionRecord.of(env, first)
    assert record.reply_to is None and record.follow_ups[0].envelope.reply_to == "inbox"
    assert len(record.encode()) < 512 * 1024
    (final,) = [part for part in parts if not part.follow_ups]
    last = DecisionRecord.of(env.model_copy(update={"delivery_id": "d:0"}), final)
    assert last.reply_to == "inbox" and last.follow_ups == []


def test_a_part_decided_again_opens_nothing_new() -> None:
    state = InMemoryState()
    body = schedule_body(
        days=90, pattern=pattern_body(["mon", "tue", "wed", "thu", "fri"], "08:00", "16:00", minutes=15)
    )
    first = state.run(cmd("schedule.create", **body))
    follow_up = first.follow_ups[0]
    again = state.run(cmd(follow_up.command, **follow_up.body), apply=False)
    assert again.ok and [e for e in again.events if e.type == "slot.opened"] == []


def test_a_long_exception_closes_slots_in_parts_and_lists_every_conflict_once() -> None:
    state = InMemoryState()
    body = schedule_body(
        days=90, pattern=pattern_body(["mon", "tue", "wed", "thu", "fri"], "08:00", "16:00", minutes=15)
    )
    schedule = ok(state.run(cmd("schedule.create", **body)))
    slots = sorted(state.all(Slot), key=lambda s: s.start)
    booked = [ok(book(state, slots[i].id, f"pat-{i}"))["id"] for i in (3, 700, 2000)]
    exception = cmd(
        "schedule.add-exception", scheduleId=schedule["id"], start=iso(MONDAY), end=iso(MONDAY + timedelta(days=90))
    )
    earlier = len(state.follow_up_decisions)
    first = state.run(exception)
    assert first.ok and [f.command for f in first.follow_ups] == ["schedule.reconcile"]
    parts = state.follow_up_decisions[earlier:]
    final = next(d for d in parts if not d.follow_ups)
    assert final.data is not None and sorted(a["id"] for a in final.data["conflicts"]) == sorted(booked)
    statuses = {s.status.value for s in state.all(Slot) if s.id not in {slots[i].id for i in (3, 700, 2000)}}
    assert statuses == {"busy-unavailable"}
    # parts end on whole days: at most one day (32 slots here) past the bound, plus the schedule
    assert all(len(d.changes) <= SLOTS_PER_DECISION + 32 + 1 for d in [first, *parts])


def test_a_slot_inside_an_exception_cannot_be_booked_before_its_part_closed_it() -> None:
    state = InMemoryState()
    schedule = create_schedule(state)
    slot = create_slot(state, schedule["id"], at(10))
    with_exception = cmd("schedule.add-exception", scheduleId=schedule["id"], start=iso(at(9)), end=iso(at(12)))
    state.run(with_exception, apply=False)  # decided, but pretend only the schedule change landed
    decision = state.run(with_exception)
    assert decision.ok
    state.entities[("slot", slot["id"])] = state.get(Slot, slot["id"]).model_copy(update={"status": SlotStatus.FREE})
    assert_refused(book(state, slot["id"]), ErrorCode.SLOT_NOT_AVAILABLE, 409)


def test_every_decision_advances_the_versions_of_the_indexes_it_writes_once() -> None:
    state = InMemoryState()
    schedule = create_schedule(state)
    slot = create_slot(state, schedule["id"], at(9))
    before = state.calendar_bucket(slot["id"])
    booked = state.run(cmd("appointment.book", slotId=slot["id"], patientId="pat-1"), follow=False)
    (bucket,) = [i for i in booked.indexes if isinstance(i, DayIndex)]
    assert bucket.version == before.version + 1  # hold writes the bucket twice, one version step
