"""A resource's calendar as one decision sees it: day buckets read and written through the session."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from domain.model import Appointment, Period, Slot
from domain.resource import DayIndex, SlotRef, days_touching

if TYPE_CHECKING:
    from domain.decisions import Session


class Calendar:
    def __init__(self, session: Session, token: str) -> None:
        self._session = session
        self._token = token

    def _bucket(self, start: Period | Slot | Appointment) -> DayIndex:
        return self._session.day(self._token, start.start.date())

    def slots(self, period: Period, schedule_id: str | None = None) -> list[tuple[str, SlotRef]]:
        """Slots overlapping `period` (of one schedule if given), by start."""
        found = [
            (sid, ref)
            for day in days_touching(period)
            for sid, ref in self.day_slots(day).items()
            if ref.period.overlaps(period) and schedule_id in (None, ref.schedule_id)
        ]
        return sorted(found, key=lambda item: (item[1].start, item[0]))

    def day_slots(self, day: date) -> dict[str, SlotRef]:
        """The slots starting on `day`, those its day index held before `DaySlots` included."""
        legacy = self._session.day(self._token, day).slots
        slots = self._session.day_slots(self._token, day).slots
        return {**legacy, **slots} if legacy else slots

    def overlapping_appointments(
        self, period: Period, *, excluding: str | None = None, seats_of: Slot | None = None
    ) -> list[str]:
        """Active appointments overlapping `period`, but `excluding` and those holding seats of `seats_of`
        (the seats of one slot are one occupancy of the resource)."""
        skip = {excluding, *(self.holders(seats_of) if seats_of is not None else [])}
        return sorted(
            aid
            for day in days_touching(period)
            for aid, p in self._session.day(self._token, day).appointments.items()
            if aid not in skip and p.overlaps(period)
        )

    def starting(self, period: Period, *, excluding: str | None = None) -> list[str]:
        """Active appointments that start inside `period`."""
        return sorted(
            aid
            for day in days_touching(period)
            for aid, p in self._session.day(self._token, day).appointments.items()
            if aid != excluding and period.start <= p.start < period.end
        )

    def holders(self, slot: Slot) -> list[str]:
        """The active appointments holding the slot's seats."""
        return list(self._bucket(slot).holders.get(slot.id, []))

    def add_slot(self, slot: Slot) -> None:
        day = self._session.day_slots(self._token, slot.start.date())
        ref = SlotRef(schedule_id=slot.schedule_id, start=slot.start, end=slot.end)
        self._session.save_day_slots(day.model_copy(update={"slots": {**day.slots, slot.id: ref}}))

    def hold(self, slot: Slot, appointment: Appointment) -> None:
        self.take(slot, appointment.id, appointment.period)

    def take(self, slot: Slot, appointment_id: str, period: Period) -> None:
        """A seat of `slot` for the appointment, and its time on this calendar."""
        bucket = self._bucket(slot)
        seats = [*bucket.holders.get(slot.id, []), appointment_id]
        self._session.save_day(bucket.model_copy(update={"holders": {**bucket.holders, slot.id: seats}}))
        self.occupy(appointment_id, period)

    def occupy(self, key: str, period: Period) -> None:
        """`key` (an appointment, or a booking in progress) takes `period` of this calendar's time."""
        bucket = self._bucket(period)
        self._session.save_day(bucket.model_copy(update={"appointments": {**bucket.appointments, key: period}}))

    def vacate(self, key: str, period: Period) -> None:
        """Forget `key`'s time, if it is still `period` (a later hold of the same appointment keeps its own)."""
        bucket = self._bucket(period)
        if bucket.appointments.get(key) == period:
            rest = {k: v for k, v in bucket.appointments.items() if k != key}
            self._session.save_day(bucket.model_copy(update={"appointments": rest}))

    def release(self, slot: Slot | None, appointment: Appointment) -> bool:
        """Forget the appointment's time; True if it held `slot`, which the caller then frees."""
        return self.give_back(slot, appointment.id, appointment.period)

    def give_back(self, slot: Slot | None, appointment_id: str, period: Period) -> bool:
        """Forget the appointment's time `period`; True if it held `slot`, which the caller then frees."""
        self.vacate(appointment_id, period)
        if slot is None or appointment_id not in self.holders(slot):
            return False
        bucket = self._bucket(slot)
        seats = [a for a in bucket.holders.get(slot.id, []) if a != appointment_id]
        holders = {k: v for k, v in bucket.holders.items() if k != slot.id} | ({slot.id: seats} if seats else {})
        self._session.save_day(bucket.model_copy(update={"holders": holders}))
        return True
