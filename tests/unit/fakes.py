"""In-memory state and small builders for the domain unit tests.

`InMemoryState` implements the `State` protocol of `domain.decisions` with two
dicts and applies decisions the way the actor does: every changed entity by
(kind, id), every changed resource index by token. Nothing here does I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from domain.commands import Command, parse_command
from domain.decisions import WRITE, Context, Decision, Event, FollowUp
from domain.errors import ErrorCode
from domain.model import Entity
from domain.resource import DayIndex, DaySlots, ResourceIndex, WaitingSaga, day_key, day_slots_key, saga_key
from domain.usecases import decide

E = TypeVar("E", bound=Entity)

#: the caller the actor names in follow-up commands (scheduling/core/wire.py)
FOLLOW_UP_CALLER = "scheduling-follow-up"
TENANT = "t1"
OTHER_TENANT = "t2"
#: The fixed clock of every context unless a test asks for another one.
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
#: A Monday; the default planning horizon is the week starting here.
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
PRACTITIONER = "Practitioner/p1"
LOCATION = "Location/l1"
SERVICE = "consultation"

_command_ids = itertools.count(1)


def next_command_id() -> str:
    return f"cmd-{next(_command_ids)}"


def make_context(
    *,
    tenant: str = TENANT,
    scopes: Iterable[str] = (WRITE,),
    command_id: str | None = None,
    now: datetime = NOW,
    patient_id: str | None = None,
    subject: str | None = "user-1",
) -> Context:
    """A command's context; each call gets a fresh command id unless one is given."""
    return Context(
        tenant=tenant,
        command_id=command_id or next_command_id(),
        now=now,
        subject=subject,
        scopes=frozenset(scopes),
        patient_id=patient_id,
    )


def as_service(ctx: Context, command_id: str | None = None) -> Context:
    """The context of a follow-up command: the service itself (the actor's follow-up claims), same tenant."""
    return replace(
        ctx,
        command_id=command_id or ctx.command_id,
        subject=FOLLOW_UP_CALLER,
        scopes=frozenset({WRITE}),
        patient_id=None,
    )


def iso(moment: datetime) -> str:
    return moment.isoformat()


def cmd(name: str, **body: Any) -> Command:
    """A command parsed from a camelCase JSON body, exactly as the bridge does it."""
    return parse_command(name, body)


class InMemoryState:
    """The actor's tables as dicts, plus a log of everything applied."""

    def __init__(self) -> None:
        self.entities: dict[tuple[str, str], Entity] = {}
        self.indexes: dict[str, ResourceIndex | DayIndex | DaySlots | WaitingSaga] = {}
        self.events: list[Event] = []
        self.follow_up_decisions: list[Decision] = []

    # --- the State protocol ---

    def entity(self, kind: str, entity_id: str) -> Entity | None:
        return self.entities.get((kind, entity_id))

    def resource(self, token: str) -> ResourceIndex | None:
        found = self.indexes.get(token)
        assert found is None or isinstance(found, ResourceIndex)
        return found

    def day(self, token: str, day: date) -> DayIndex | None:
        found = self.indexes.get(day_key(token, day))
        assert found is None or isinstance(found, DayIndex)
        return found

    def day_slots(self, token: str, day: date) -> DaySlots | None:
        found = self.indexes.get(day_slots_key(token, day))
        assert found is None or isinstance(found, DaySlots)
        return found

    def saga(self, home: str, saga_id: str) -> WaitingSaga | None:
        found = self.indexes.get(saga_key(home, saga_id))
        assert found is None or isinstance(found, WaitingSaga)
        return found

    def calendar(self, token: str) -> DayIndex:
        """All day buckets of one resource merged, for assertions that do not care about bucketing."""
        days = [i for i in self.indexes.values() if isinstance(i, DayIndex) and i.token == token]
        slot_days = [i for i in self.indexes.values() if isinstance(i, DaySlots) and i.token == token]
        for day in days:  # every item sits in the bucket of the day it starts on
            assert not day.slots  # slots are kept apart, in DaySlots
            assert all(p.start.date() == day.day for p in day.appointments.values())
        for slot_day in slot_days:
            assert all(ref.start.date() == slot_day.day for ref in slot_day.slots.values())
        return DayIndex(
            token=token,
            day=date(1970, 1, 1),
            slots={k: v for d in slot_days for k, v in d.slots.items()},
            holders={k: v for d in days for k, v in d.holders.items()},
            appointments={k: v for d in days for k, v in d.appointments.items()},
        )

    def calendar_bucket(self, slot_id: str) -> DayIndex:
        """The day bucket of a slot's day."""
        slots = next(i for i in self.indexes.values() if isinstance(i, DaySlots) and slot_id in i.slots)
        return self.day(slots.token, slots.day) or DayIndex(token=slots.token, day=slots.day)

    # --- applying decisions ---

    def apply(self, decision: Decision) -> None:
        """As the real table state does: nothing is ever moved back to an older version."""
        for entity in decision.changes:
            current = self.entities.get((entity.kind, entity.id))
            if current is None or current.version < entity.version:
                self.entities[(entity.kind, entity.id)] = entity
        for index in decision.indexes:
            held = self.indexes.get(index.key)
            if held is None or held.version < index.version:
                self.indexes[index.key] = index
        self.events.extend(decision.events)

    def run(self, command: Command, ctx: Context | None = None, *, apply: bool = True, follow: bool = True) -> Decision:
        """Decide `command` against this state and apply it, then (`follow`) its follow-ups at once (another
        partition's actor decides them later, as the service itself).

        Returns the command's own decision, but for one that starts a saga (a booking or a move) and is
        followed: what the caller is answered with, the saga's settlement."""
        own, answer = self._run(command, ctx, apply=apply, follow=follow)
        return answer if own.pending else own

    def follow(self, follow_up: FollowUp, ctx: Context | None = None, *, follow: bool = True) -> Decision:
        """Decide one follow-up command as the service's own (what another partition's actor does)."""
        follower = as_service(ctx or make_context())
        return self._run(parse_command(follow_up.command, follow_up.body), follower, apply=True, follow=follow)[1]

    def _run(
        self, command: Command, ctx: Context | None, *, apply: bool, follow: bool = True
    ) -> tuple[Decision, Decision]:
        ctx = ctx or make_context()
        decision = decide(command, self, ctx)
        if not apply:
            return decision, decision
        if decision.ok or decision.changes or decision.indexes:
            self.apply(decision)
        answer = decision
        for i, follow_up in enumerate(decision.follow_ups if follow else []):
            follower = as_service(ctx, f"{ctx.command_id}:follow-up:{i}")
            _, followed = self._run(parse_command(follow_up.command, follow_up.body), follower, apply=True)
            if follow_up.carries_reply:
                answer = followed
        if ctx.subject == FOLLOW_UP_CALLER:
            self.follow_up_decisions.append(decision)
        return decision, answer

    # --- reading back ---

    def get(self, cls: type[E], entity_id: str) -> E:
        found = self.entities[(cls.kind, entity_id)]
        assert isinstance(found, cls)
        return found

    def all(self, cls: type[E]) -> list[E]:
        return sorted(
            (e for (kind, _), e in self.entities.items() if kind == cls.kind and isinstance(e, cls)),
            key=lambda e: e.id,
        )

    def versions(self) -> dict[tuple[str, str], int]:
        return {key: e.version for key, e in self.entities.items()}

    def copy(self) -> InMemoryState:
        other = InMemoryState()
        other.entities = dict(self.entities)
        other.indexes = dict(self.indexes)
        other.events = list(self.events)
        return other


def ok(decision: Decision) -> dict[str, Any]:
    """The reply data of an accepted decision (fails the test with the error otherwise)."""
    assert decision.ok, decision.reply()
    assert decision.data is not None
    return decision.data


def assert_refused(decision: Decision, code: ErrorCode, status: int) -> dict[str, Any]:
    """A refusal with `code` and HTTP `status` that changes and emits nothing; returns the error body."""
    assert not decision.ok, decision.reply()
    assert decision.error is not None
    assert decision.error.code is code, decision.error.as_reply()
    reply = decision.error.as_reply()
    assert reply["ok"] is False
    assert reply["error"]["code"] == code.value
    assert reply["error"]["status"] == status
    assert decision.reply() == reply
    assert decision.changes == []
    assert decision.indexes == []
    assert decision.events == []
    error: dict[str, Any] = reply["error"]
    return error


def event_types(decision: Decision) -> list[str]:
    return [e.type for e in decision.events]


# --- builders: each runs one command against the state and returns its reply data ---


def pattern_body(
    days: list[str],
    start: str = "09:00",
    end: str = "12:00",
    *,
    minutes: int = 30,
    timezone: str = "UTC",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "windows": [{"daysOfWeek": days, "startTime": start, "endTime": end}],
        "slotMinutes": minutes,
        "timezone": timezone,
        **extra,
    }


def schedule_body(
    *,
    actor: str = PRACTITIONER,
    actor_type: str = "Practitioner",
    location: str = LOCATION,
    service: str = SERVICE,
    start: datetime = MONDAY,
    days: int = 7,
    pattern: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "actor": {"reference": actor, "type": actor_type},
        "locationId": location,
        "serviceType": service,
        "planningHorizon": {"start": iso(start), "end": iso(start + timedelta(days=days))},
    }
    if pattern is not None:
        body["availabilityPattern"] = pattern
    return body


def create_schedule(state: InMemoryState, ctx: Context | None = None, **kwargs: Any) -> dict[str, Any]:
    return ok(state.run(cmd("schedule.create", **schedule_body(**kwargs)), ctx))


def create_slot(
    state: InMemoryState,
    schedule_id: str,
    start: datetime,
    minutes: int = 30,
    ctx: Context | None = None,
    **extra: Any,
) -> dict[str, Any]:
    command = cmd(
        "slot.create",
        scheduleId=schedule_id,
        start=iso(start),
        end=iso(start + timedelta(minutes=minutes)),
        **extra,
    )
    return ok(state.run(command, ctx))


def book(
    state: InMemoryState, slot_id: str, patient: str = "pat-1", ctx: Context | None = None, **extra: Any
) -> Decision:
    return state.run(cmd("appointment.book", slotId=slot_id, patientId=patient, **extra), ctx)


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    """A UTC moment in the default planning horizon: `day` days after MONDAY at hour:minute."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)
