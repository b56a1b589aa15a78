"""Decision plumbing: the state port, the context of a command and its outcome.

A use case reads through a `Session`, which sees its own pending writes and
advances each entity's and index's version once per decision however often it is saved, and returns a `Decision`:
the entities after the change, the events and the reply. Nothing is written
until the caller applies the decision, so a refusal changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from domain.booking_policy import CONTRACT_DEFAULTS
from domain.errors import DomainError, ErrorCode
from domain.ids import event_id
from domain.model import BookingPolicy, Entity
from domain.policy import ADMIN, DOUBLE_BOOK, READ, WRITE, Access
from domain.resource import DayIndex, DaySlots, ResourceIndex, WaitingSaga, day_key, day_slots_key, saga_key

E = TypeVar("E", bound=Entity)
__all__ = ["ADMIN", "DOUBLE_BOOK", "READ", "WRITE", "Context", "Decision", "Event", "FollowUp", "Session", "State"]


class State(Protocol):
    """Read access to the actor's tables (Faust tables in the worker, dicts in tests)."""

    def entity(self, kind: str, entity_id: str) -> Entity | None: ...

    def resource(self, token: str) -> ResourceIndex | None: ...

    def day(self, token: str, day: date) -> DayIndex | None: ...

    def day_slots(self, token: str, day: date) -> DaySlots | None: ...

    def saga(self, home: str, saga_id: str) -> WaitingSaga | None: ...


@dataclass(frozen=True)
class Context:
    tenant: str
    command_id: str
    now: datetime
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    patient_id: str | None = None
    #: the service-wide booking rules, for what a schedule's own policy leaves out
    policy: BookingPolicy = CONTRACT_DEFAULTS
    #: how long a saga may hold slots of other resources before the home gives them back
    hold_for: timedelta = timedelta(minutes=2)

    @property
    def access(self) -> Access:
        return Access(scopes=self.scopes, patient_id=self.patient_id)


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    subject: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FollowUp:
    """A command this decision asks another resource's actor to decide (another partition)."""

    token: str
    command: str
    body: dict[str, Any]
    #: the caller's reply waits for this follow-up (a decision split in parts answers at its last part)
    carries_reply: bool = False


@dataclass
class Decision:
    data: dict[str, Any] | None = None
    error: DomainError | None = None
    changes: list[Entity] = field(default_factory=list)
    indexes: list[ResourceIndex | DayIndex | DaySlots | WaitingSaga] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    #: the caller is answered by a saga's last step: the starting command's outcome is "pending" until then
    pending: bool = False
    #: (caller, command id) of the command whose saga this decision settles: a repeat of it gets this reply
    answers: tuple[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def reply(self) -> dict[str, Any]:
        if self.error is not None:
            return self.error.as_reply()
        return {"ok": True, "data": self.data}


_SUBJECT_PREFIX = {
    "schedule": "schedules",
    "slot": "slots",
    "appointment": "appointments",
    "waitlist": "waitlist",
}


class Session:
    """One command's view of state plus its pending changes and events."""

    def __init__(self, state: State, ctx: Context) -> None:
        self._state = state
        self.ctx = ctx
        self._entities: dict[tuple[str, str], Entity] = {}
        self._indexes: dict[str, ResourceIndex] = {}
        self._days: dict[str, DayIndex] = {}
        self._day_slots: dict[str, DaySlots] = {}
        self._sagas: dict[str, WaitingSaga] = {}
        self._events: list[Event] = []
        self._follow_ups: list[FollowUp] = []
        self._pending = False
        self._answers: tuple[str, str] | None = None
        self._refusal: DomainError | None = None

    def find(self, cls: type[E], entity_id: str) -> E | None:
        """The tenant's entity, or None: another tenant's data does not exist for the caller."""
        key = (cls.kind, entity_id)
        found = self._entities.get(key) or self._state.entity(cls.kind, entity_id)
        if found is None or found.tenant_id != self.ctx.tenant or not isinstance(found, cls):
            return None
        return found

    def get(self, cls: type[E], entity_id: str, missing: ErrorCode) -> E:
        found = self.find(cls, entity_id)
        if found is None:
            raise DomainError(missing, f"{cls.kind} {entity_id} not found")
        return found

    def exists(self, kind: str, entity_id: str) -> bool:
        return (kind, entity_id) in self._entities or self._state.entity(kind, entity_id) is not None

    def save(self, entity: E) -> E:
        """Record the entity after the change with its version advanced by one (1 when new)."""
        key = (entity.kind, entity.id)
        before = self._entities.get(key) or self._state.entity(entity.kind, entity.id)
        if key in self._entities:
            version = self._entities[key].version
        else:
            version = before.version + 1 if before is not None else 1
        saved = entity.model_copy(update={"version": version})
        self._entities[key] = saved
        return saved

    def index(self, token: str) -> ResourceIndex:
        return self._indexes.get(token) or self._state.resource(token) or ResourceIndex(token=token)

    def save_index(self, index: ResourceIndex) -> None:
        stored = self._state.resource(index.token)
        self._indexes[index.token] = index.model_copy(update={"version": (stored.version if stored else 0) + 1})

    def day(self, token: str, day: date) -> DayIndex:
        key = day_key(token, day)
        return self._days.get(key) or self._state.day(token, day) or DayIndex(token=token, day=day)

    def save_day(self, index: DayIndex) -> None:
        if index.slots:  # written before `DaySlots`: its slots move there in this decision (a one-time write)
            slots = self.day_slots(index.token, index.day)
            self.save_day_slots(slots.model_copy(update={"slots": {**index.slots, **slots.slots}}))
            index = index.model_copy(update={"slots": {}})
        stored = self._state.day(index.token, index.day)
        self._days[index.key] = index.model_copy(update={"version": (stored.version if stored else 0) + 1})

    def day_slots(self, token: str, day: date) -> DaySlots:
        key = day_slots_key(token, day)
        return self._day_slots.get(key) or self._state.day_slots(token, day) or DaySlots(token=token, day=day)

    def save_day_slots(self, slots: DaySlots) -> None:
        stored = self._state.day_slots(slots.token, slots.day)
        self._day_slots[slots.key] = slots.model_copy(update={"version": (stored.version if stored else 0) + 1})

    def saga(self, home: str, saga_id: str) -> WaitingSaga | None:
        key = saga_key(home, saga_id)
        return self._sagas.get(key) or self._state.saga(home, saga_id)

    def save_saga(self, saga: WaitingSaga) -> None:
        stored = self._state.saga(saga.home, saga.saga_id)
        self._sagas[saga.key] = saga.model_copy(update={"version": (stored.version if stored else 0) + 1})

    def emit(self, event_type: str, entity: Entity, extra: dict[str, Any] | None = None) -> None:
        data = entity.dump()
        if extra:
            data.update(extra)
        self._events.append(
            Event(
                id=event_id(self.ctx.tenant, self.ctx.command_id, len(self._events)),
                type=event_type,
                subject=f"{_SUBJECT_PREFIX[entity.kind]}/{entity.id}",
                data=data,
            )
        )

    def follow_up(self, token: str, command: str, body: dict[str, Any], *, carries_reply: bool = False) -> None:
        self._follow_ups.append(FollowUp(token, command, body, carries_reply))

    def await_saga(self) -> None:
        """The caller's reply waits for the saga this decision starts (its follow-ups carry the reply)."""
        self._pending = True

    def settle(self, caller: str, command_id: str, refusal: DomainError | None = None) -> None:
        """This decision ends the saga of `command_id`: with `refusal`, the reply is that error, yet the changes
        (what the saga held, given back) still apply."""
        self._answers = (caller, command_id)
        self._refusal = refusal

    def decision(self, data: dict[str, Any]) -> Decision:
        return Decision(
            data=None if self._refusal else data,
            error=self._refusal,
            pending=self._pending,
            answers=self._answers,
            changes=list(self._entities.values()),
            indexes=[*self._indexes.values(), *self._days.values(), *self._day_slots.values(), *self._sagas.values()],
            events=list(self._events),
            follow_ups=list(self._follow_ups),
        )
