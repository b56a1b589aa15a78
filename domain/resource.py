"""Per-resource indexes kept by the resource's actor beside the entities.

They hold exactly what a decision needs without scanning, and are split so
that one booking rewrites a few small records, not a resource's whole calendar:

- `ResourceIndex` (one per resource): its waiting waitlist entries (and, written before issue 10's change,
  the plans of its sagas in progress);
- `WaitingSaga` (one per saga, beside its home resource's index): the plan of a booking or move across
  resources while it runs, then only that it ended (each saga under its own key: a resource index that held
  every saga in flight was rewritten whole at every start and settlement);
- `DayIndex` (one per resource and UTC day): the active appointments that
  start that day, and which appointment holds which slot. A patient has
  day indexes too (keyed by the patient's token): the times of its active
  appointments, and of bookings in progress under their saga id.
- `DaySlots` (one per resource and UTC day, beside its `DayIndex`): the slots
  that start that day. Apart because slots change when the schedule does and
  bookings all day long: a day index that held its slots too was rewritten whole
  (a day of 5-minute slots holds 144) into the journal and the changelog at
  every booking, most of a booking's bytes.

A slot or appointment lasts at most MAX_SPAN, so whatever overlaps a period
starts on one of the days `days_touching` lists.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from pydantic import field_validator

from domain.model import Model, Period
from domain.saga import SagaPlan

MAX_SPAN = timedelta(hours=24)


class SlotRef(Model):
    schedule_id: str
    start: datetime
    end: datetime

    @property
    def period(self) -> Period:
        return Period(start=self.start, end=self.end)


class ResourceIndex(Model):
    KIND: ClassVar[str] = "resource"
    token: str
    waitlist: list[str] = []
    #: saga id -> plan of a saga in progress, as written before each saga had its own key (`WaitingSaga`)
    sagas: dict[str, SagaPlan] = {}
    #: +1 per decision that changes it, so re-applying an older decision never rolls it back
    version: int = 0

    @property
    def key(self) -> str:
        return self.token


class WaitingSaga(Model):
    """A saga its home decides: its plan while it runs, None once settled (the newer version keeps a replayed
    start from reviving it; the home's sweep forgets it later)."""

    KIND: ClassVar[str] = "saga"
    home: str
    saga_id: str
    plan: SagaPlan | None = None
    expires_at: datetime
    version: int = 0

    @property
    def key(self) -> str:
        return saga_key(self.home, self.saga_id)


def saga_key(home: str, saga_id: str) -> str:
    """Beside the home's index in the same table; a routing token never holds the separator (a slash)."""
    return f"{home}{SAGA_SEPARATOR}{saga_id}"


SAGA_SEPARATOR = "/saga/"


class DayIndex(Model):
    KIND: ClassVar[str] = "day"
    token: str
    day: date
    #: slots as day indexes held them before `DaySlots`: still read, never added to
    slots: dict[str, SlotRef] = {}
    #: slot id -> ids of the active appointments that hold it (one per seat taken)
    holders: dict[str, list[str]] = {}
    #: active appointment id -> its period
    appointments: dict[str, Period] = {}
    version: int = 0

    @property
    def key(self) -> str:
        return day_key(self.token, self.day)

    @field_validator("holders", mode="before")
    @classmethod
    def _one_holder_before_seats(cls, value: Any) -> Any:
        """Day indexes written before slots had seats held one appointment id per slot."""
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


class DaySlots(Model):
    KIND: ClassVar[str] = "slots"
    token: str
    day: date
    slots: dict[str, SlotRef] = {}
    version: int = 0

    @property
    def key(self) -> str:
        return day_slots_key(self.token, self.day)


def day_key(token: str, day: date) -> str:
    return f"{token}:{day.isoformat()}"


def day_slots_key(token: str, day: date) -> str:
    """Beside the day's index in the same table (a day key ends in its date, never in this suffix)."""
    return f"{day_key(token, day)}{SLOTS_SUFFIX}"


SLOTS_SUFFIX = "/slots"


def days_touching(period: Period) -> list[date]:
    first = (period.start - MAX_SPAN).date()
    last = period.end.date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
