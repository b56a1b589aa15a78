"""One contract for the actor's state: the unit-test fake and the real table state pass the same suite.

The real `TableState` runs here over plain dicts in place of Faust tables (its only dependency is a
mapping per table), so the fake cannot drift from it: reads, the version guard and whole use-case
sequences must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, Protocol

import pytest
from fakes import MONDAY, InMemoryState, as_service, cmd, iso, make_context, schedule_body

from domain.commands import Command, parse_command
from domain.decisions import Context, Decision, State
from domain.model import Entity
from domain.resource import DayIndex, ResourceIndex, WaitingSaga
from domain.usecases import decide
from scheduling.core.wire import Claims, CommandEnvelope, DecisionRecord
from tables import Tables
from tables.state import TableState


class Store(State, Protocol):
    def apply_decision(self, decision: Decision) -> None: ...


class Fake(InMemoryState):
    def apply_decision(self, decision: Decision) -> None:
        self.apply(decision)


class Real(TableState):
    """The production state over dict tables; a decision is applied as its record, as the actor does."""

    ENV = CommandEnvelope(delivery_id="d", type="slot.create", body={}, claims=Claims(tenant="t1"), command_id="c")

    def __init__(self) -> None:
        names = ("schedules", "slots", "appointments", "waitlist", "resources", "resource_days", "journal", "cursor")
        super().__init__(Tables(**{name: {} for name in names}))

    def apply_decision(self, decision: Decision) -> None:
        record = DecisionRecord.decode(DecisionRecord.of(self.ENV, decision).encode())  # as read back from the wire
        self.apply(record)
        self.flush()


STORES: list[Callable[[], Store]] = [Fake, Real]


def run(store: Store, name: str, step: str = "", **body: Any) -> Decision:
    """Decide and apply, with its follow-ups; `step` names the command (ids derive from it), so two stores mint
    the same ids. Returns the decision that answers the caller (a saga's settlement for a booking)."""
    own, answer = _chain(store, cmd(name, **body), make_context(command_id=step) if step else make_context())
    return answer if own.pending else own


def _chain(store: Store, command: Command, ctx: Context) -> tuple[Decision, Decision]:
    """The command's own decision and the last of its chain of follow-ups that carries the reply."""
    decision = decide(command, store, ctx)
    assert decision.ok, decision.error
    store.apply_decision(decision)
    answer = decision
    for i, follow_up in enumerate(decision.follow_ups):
        follower = as_service(ctx, f"{ctx.command_id}:follow-up:{i}")
        _, followed = _chain(store, parse_command(follow_up.command, follow_up.body), follower)
        answer = followed if follow_up.carries_reply else answer
    return decision, answer


@pytest.fixture(params=STORES, ids=["fake", "real"])
def store(request: pytest.FixtureRequest) -> Store:
    factory: Callable[[], Store] = request.param
    return factory()


def test_nothing_is_there_before_it_is_written(store: Store) -> None:
    assert store.entity("slot", "sl-x") is None
    assert store.resource("tok") is None
    assert store.day("tok", date(2026, 3, 2)) is None


def test_what_a_decision_writes_is_read_back(store: Store) -> None:
    created = run(store, "schedule.create", **schedule_body())
    schedule = created.changes[0]
    assert store.entity("schedule", schedule.id) == schedule
    for index in created.indexes:
        if isinstance(index, ResourceIndex):
            assert store.resource(index.token) == index
        elif isinstance(index, WaitingSaga):
            assert store.saga(index.home, index.saga_id) == index
        else:
            assert isinstance(index, DayIndex) and store.day(index.token, index.day) == index


def test_an_older_version_never_replaces_a_newer_one(store: Store) -> None:
    run(store, "schedule.create", **schedule_body())
    first = run(
        store, "slot.create", scheduleId=_schedule_id(store), start=iso(MONDAY), end=iso(MONDAY + timedelta(minutes=30))
    )
    slot = first.changes[0]
    booked = run(store, "appointment.book", slotId=slot.id, patientId="pat-1")
    store.apply_decision(first)  # a redelivered older decision
    now = store.entity("slot", slot.id)
    assert now is not None and now.version == 3 and now.version > slot.version  # held, then booked
    assert booked.changes and booked.indexes  # the settlement (the day buckets were written when it started)
    for index in booked.indexes:  # the saga it ended
        assert isinstance(index, WaitingSaga) and index.plan is None and store.saga(index.home, index.saga_id) == index


def test_the_same_sequence_of_use_cases_leaves_the_same_state_in_both() -> None:
    states = [factory() for factory in STORES]
    written: list[list[Entity]] = []
    for state in states:
        run(state, "schedule.create", "s0", **schedule_body())
        schedule_id = _schedule_id(state)
        slots = [
            run(state, "slot.create", f"s1-{i}", scheduleId=schedule_id, start=iso(MONDAY + timedelta(minutes=30 * i)),
                end=iso(MONDAY + timedelta(minutes=30 * (i + 1)))).changes[0]
            for i in range(3)
        ]  # fmt: skip
        booked = run(state, "appointment.book", "s2", slotId=slots[0].id, patientId="pat-1").changes
        appointment = next(e.id for e in booked if e.kind == "appointment")
        run(state, "appointment.cancel", "s3", appointmentId=appointment)
        rebooked = run(state, "appointment.book", "s4", slotId=slots[0].id, patientId="pat-2").changes
        written.append([*slots, *booked, *rebooked])
    fake, real = states
    assert [(e.kind, e.id) for e in written[0]] == [(e.kind, e.id) for e in written[1]]
    for entity in written[0]:
        assert fake.entity(entity.kind, entity.id) == real.entity(entity.kind, entity.id) is not None


def _schedule_id(store: Store) -> str:
    if isinstance(store, InMemoryState):
        return next(e.id for e in store.entities.values() if e.kind == "schedule")
    assert isinstance(store, Real)
    return next(iter(store._tables.schedules))
