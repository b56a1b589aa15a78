"""Slot occupancy invariants under random sequences of appointment commands.

After every step, accepted or refused:
- no slot is held by two appointments (a slot is held by a proposed, pending, booked,
  checked-in, arrived or fulfilled appointment);
- every busy or busy-tentative slot has exactly one holding appointment, and every holding
  appointment's slot is busy (busy-tentative while the appointment is proposed);
- the resource index agrees with the entities;
- versions only grow (by exactly one per change), entities never disappear, and a refusal
  changes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fakes import PRACTITIONER, TENANT, InMemoryState, at, cmd, create_schedule, create_slot, make_context
from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.commands import Command
from domain.decisions import WRITE
from domain.ids import resource_token
from domain.model import Appointment, Slot
from domain.status import AppointmentStatus

HOLDING = {"proposed", "pending", "booked", "checked-in", "arrived", "fulfilled"}
PATIENTS = ["pat-a", "pat-b", "pat-c"]
OPS = ["book", "portal", "cancel", "reschedule", "status", "check-in"]

step_strategy = st.tuples(
    st.sampled_from(OPS),
    st.integers(min_value=0, max_value=7),  # slot (modulo the slot count)
    st.integers(min_value=0, max_value=7),  # appointment (modulo the appointments so far)
    st.sampled_from(PATIENTS),
    st.sampled_from([s.value for s in AppointmentStatus]),
    st.sampled_from(["none", "none", "none", "current", "current", "stale"]),  # expectedVersion
    st.sampled_from([False, False, False, False, True]),  # act with a patient token instead of a staff token
)


def _setup(n: int, overlapping: bool) -> tuple[InMemoryState, list[str]]:
    """One schedule with n back-to-back 30-minute slots; with `overlapping`, a second schedule of the
    same practitioner whose slots straddle those of the first."""
    state = InMemoryState()
    schedule = create_schedule(state)
    slots = [create_slot(state, schedule["id"], at(9, 30 * i))["id"] for i in range(n)]
    if overlapping:
        second = create_schedule(state, location="Location/l2")
        slots += [create_slot(state, second["id"], at(9, 15 + 30 * i))["id"] for i in range(n - 1)]
    return state, slots


def _command(step: tuple[Any, ...], slots: list[str], appointments: list[str], counter: int) -> Command | None:
    op, slot_i, appt_i, patient, status, version_mode, _ = step
    slot = slots[slot_i % len(slots)]
    if op == "book":
        return cmd("appointment.book", slotId=slot, patientId=patient)
    if op == "portal":
        return cmd(
            "portal.appointment.requested",
            requestId=f"req-{counter}",
            patientId=patient,
            slotId=slot,
            serviceType="consultation",
        )
    if not appointments:
        return None
    body: dict[str, Any] = {"appointmentId": appointments[appt_i % len(appointments)]}
    if op == "cancel":
        return cmd("appointment.cancel", **body, reason="random")
    if op == "reschedule":
        return cmd("appointment.reschedule", **body, newSlotId=slot)
    if op == "status":
        return cmd("appointment.status", **body, status=status)
    return cmd("appointment.check-in", **body)


def _with_version(command: Command, state: InMemoryState, version_mode: str) -> Command:
    appointment_id = getattr(command, "appointment_id", None)
    if appointment_id is None or version_mode == "none":
        return command
    current = state.get(Appointment, appointment_id).version
    expected = current if version_mode == "current" else current + 1
    return command.model_copy(update={"expected_version": expected})


def check_invariants(state: InMemoryState) -> None:
    slots = {s.id: s for s in state.all(Slot)}
    holding = [a for a in state.all(Appointment) if a.status.value in HOLDING]

    held = Counter(a.slot_id for a in holding)
    assert all(n == 1 for n in held.values()), held
    for slot in slots.values():
        if slot.status.value in {"busy", "busy-tentative"}:
            assert held[slot.id] == 1, slot
        else:
            assert held[slot.id] == 0, slot
    for appointment in holding:
        slot = slots[appointment.slot_id]
        expected = "busy-tentative" if appointment.status.value == "proposed" else "busy"
        assert slot.status.value == expected, (appointment.status, slot.status)
        assert (appointment.start, appointment.end) == (slot.start, slot.end)

    # no two holding appointments of the one practitioner overlap in time (no double-booking allowed here)
    ordered = sorted(holding, key=lambda a: a.start)
    for first, second in zip(ordered, ordered[1:], strict=False):
        assert first.end <= second.start, (first.id, second.id)

    index = state.calendar(resource_token(TENANT, PRACTITIONER))
    assert index.holders == {a.slot_id: [a.id] for a in holding}
    assert {aid: (p.start, p.end) for aid, p in index.appointments.items()} == {a.id: (a.start, a.end) for a in holding}
    assert set(index.slots) == set(slots)


def _unversioned(entities: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
    return {key: entity.model_copy(update={"version": 0}) for key, entity in entities.items()}


def run_sequence(n: int, overlapping: bool, steps: list[tuple[Any, ...]]) -> None:
    state, slots = _setup(n, overlapping)
    appointments: list[str] = []
    check_invariants(state)
    for counter, step in enumerate(steps):
        command = _command(step, slots, appointments, counter)
        if command is None:
            continue
        command = _with_version(command, state, step[5])
        # a patient token acts for a random patient: its own appointments or someone else's (FORBIDDEN)
        ctx = make_context(scopes=(WRITE,), patient_id=PATIENTS[step[2] % len(PATIENTS)] if step[6] else None)

        before = state.copy()
        decision = state.run(command, ctx)
        event(f"{command.NAME} -> {decision.error.code.value if decision.error else 'ok'}")

        if decision.ok:
            for entity in decision.changes:
                old = before.entity(entity.kind, entity.id)
                if decision.answers is None:
                    assert entity.version == (old.version + 1 if old is not None else 1), entity
                else:  # a saga's settlement: its start changed the appointment before (pendingMove)
                    assert old is None or entity.version > old.version, entity
            changed = {e.id: e.version for e in decision.changes}
            for emitted in decision.events:  # every event carries its entity after the change
                assert emitted.data["version"] == changed[emitted.subject.split("/", 1)[1]], emitted
            if command.NAME in {"appointment.book", "portal.appointment.requested"}:
                assert decision.data is not None
                appointments.append(decision.data["id"])
        elif decision.answers is None:
            assert decision.changes == [] and decision.events == [] and decision.indexes == []
            assert state.entities == before.entities
            assert state.indexes == before.indexes
        else:  # a saga refused at its end: what it held is given back, only versions moved
            assert decision.events == []
            assert _unversioned(state.entities) == _unversioned(before.entities)

        old_versions, new_versions = before.versions(), state.versions()
        assert set(old_versions) <= set(new_versions)
        assert all(new_versions[key] >= version for key, version in old_versions.items())
        check_invariants(state)


@settings(max_examples=150, deadline=None, database=None)
@given(n=st.integers(min_value=3, max_value=6), steps=st.lists(step_strategy, min_size=5, max_size=30))
def test_one_schedule_keeps_slot_occupancy_consistent(n: int, steps: list[tuple[Any, ...]]) -> None:
    run_sequence(n, overlapping=False, steps=steps)


@settings(max_examples=100, deadline=None, database=None)
@given(n=st.integers(min_value=3, max_value=6), steps=st.lists(step_strategy, min_size=5, max_size=30))
def test_overlapping_schedules_of_one_actor_never_double_book(n: int, steps: list[tuple[Any, ...]]) -> None:
    run_sequence(n, overlapping=True, steps=steps)
