"""An index write carries exactly the index's JSON form (scheduling/core/wire.py `IndexWrite.of`); a day's slots
are written apart from its bookings (domain/resource.py `DaySlots`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.model import Period
from domain.resource import DayIndex, DaySlots, ResourceIndex, SlotRef
from domain.saga import SagaPlan
from scheduling.core.wire import IndexWrite

START = datetime(2027, 11, 1, 8, tzinfo=UTC)


def test_a_booking_rewrites_its_day_index_not_the_days_slots() -> None:
    slots = {f"s{i}": SlotRef(schedule_id="sc", start=START + timedelta(minutes=5 * i),
                              end=START + timedelta(minutes=5 * i + 5)) for i in range(144)}  # fmt: skip
    day_slots = DaySlots(token="tok", day=date(2027, 11, 1), slots=slots)
    assert IndexWrite.of(day_slots).data == day_slots.model_dump(mode="json")
    assert IndexWrite.of(day_slots).key == "tok:2027-11-01/slots"
    booked = {"a1": Period(start=START, end=START + timedelta(minutes=5))}
    day = DayIndex(token="tok", day=date(2027, 11, 1), holders={"s1": ["a1"]}, appointments=booked, version=1)
    write = IndexWrite.of(day)
    assert (write.kind, write.key, write.data) == ("day", "tok:2027-11-01", day.model_dump(mode="json"))
    assert write.data["slots"] == {}


def test_a_resource_index_is_dumped_as_it_is() -> None:
    index = ResourceIndex(token="tok", waitlist=["w1"], version=3)
    assert IndexWrite.of(index).data == index.model_dump(mode="json")


def test_a_resource_index_with_waiting_sagas_is_dumped_as_it_is() -> None:
    plan = SagaPlan.model_validate(
        {"id": "tok:c1", "tenant": "t1", "intent": "book", "home": "tok", "appointmentId": "ap-tok-1",
         "patientId": "p1", "slotId": "sl-tok-1", "steps": [{"kind": "patient", "token": "pt"}],
         "expiresAt": "2027-11-01T08:00:00Z", "originCaller": "c", "originCommand": "tok:c1"}
    )  # fmt: skip
    index = ResourceIndex(token="tok", sagas={plan.id: plan}, version=1)
    assert IndexWrite.of(index).data == index.model_dump(mode="json")
    other = plan.model_copy(update={"id": "tok:c2", "origin_command": "tok:c2"})
    more = index.model_copy(update={"sagas": {**index.sagas, other.id: other}, "version": 2})
    assert IndexWrite.of(more).data == more.model_dump(mode="json")
    fewer = more.model_copy(update={"sagas": {other.id: other}, "version": 3})
    assert IndexWrite.of(fewer).data == fewer.model_dump(mode="json")
