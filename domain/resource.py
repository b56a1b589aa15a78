"""Per-resource index kept by the resource's actor beside the entities.

It holds exactly what a decision needs without scanning: the intervals of the
resource's slots (overlap checks), which appointment holds which slot and the
intervals of active appointments (double-booking), and the waiting waitlist
entries (auto-fill on cancellation).
"""

from __future__ import annotations

from datetime import datetime

from domain.model import Model, Period


class SlotRef(Model):
    schedule_id: str
    start: datetime
    end: datetime


class ResourceIndex(Model):
    token: str
    schedules: list[str] = []
    slots: dict[str, SlotRef] = {}
    #: slot id -> id of the active appointment that holds it
    holders: dict[str, str] = {}
    #: active appointment id -> its period
    appointments: dict[str, Period] = {}
    waitlist: list[str] = []

    def overlapping_appointments(self, period: Period, *, excluding: str | None = None) -> list[str]:
        return sorted(aid for aid, p in self.appointments.items() if aid != excluding and p.overlaps(period))

    def schedule_slots(self, schedule_id: str) -> dict[str, SlotRef]:
        return {sid: ref for sid, ref in self.slots.items() if ref.schedule_id == schedule_id}
