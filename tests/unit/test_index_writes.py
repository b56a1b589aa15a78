"""An index write carries exactly the index's JSON form, however often its day's slot map was dumped before
(scheduling/core/wire.py `IndexWrite.of` dumps a slot map once and reuses it while the map is the same)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.model import Period
from domain.resource import DayIndex, ResourceIndex, SlotRef
from domain.saga import SagaPlan
from scheduling.core.wire import IndexWrite

START = datetime(2027, 11, 1, 8, tzinfo=UTC)


def _day() -> DayIndex:
    slots = {f"s{i}": SlotRef(schedule_id="sc", start=START + timedelta(minutes=5 * i),
                              end=START + timedelta(minutes=5 * i + 5)) for i in range(144)}  # fmt: skip
    return DayIndex(token="tok", day=date(2027, 11, 1), slots=slots)


def test_successive_writes_of_a_day_carry_its_current_form() -> None:
    day = _day()
    assert IndexWrite.of(day).data == day.model_dump(mode="json")
    booked = {"a1": Period(start=START, end=START + timedelta(minutes=5))}
    held = day.model_copy(update={"holders": {"s1": ["a1"]}, "appointments": booked, "version": 1})
    assert held.slots is day.slots  # the map a booking keeps: its dump is reused
    assert IndexWrite.of(held).data == held.model_dump(mode="json")
    more = {**held.slots, "s999": SlotRef(schedule_id="sc", start=START, end=START + timedelta(minutes=5))}
    grown = held.model_copy(update={"slots": more, "version": 2})
    assert IndexWrite.of(grown).data == grown.model_dump(mode="json")
    assert IndexWrite.of(held).data == held.model_dump(mode="json")


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
