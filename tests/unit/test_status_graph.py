"""The appointment status graph against CONTRACT section 1, statically and through the use cases."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import InMemoryState, at, book, cmd, create_schedule, create_slot, make_context, ok
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.decisions import Context
from domain.errors import ErrorCode
from domain.model import Appointment, Slot
from domain.status import ACTIVE, FINAL, TRANSITIONS, AppointmentStatus, can_transition

S = AppointmentStatus

#: CONTRACT section 1, verbatim: "proposed→pending|booked|cancelled|entered-in-error; ..."
CONTRACT_EDGES: dict[str, set[str]] = {
    "proposed": {"pending", "booked", "cancelled", "entered-in-error"},
    "pending": {"booked", "cancelled", "entered-in-error"},
    "booked": {"checked-in", "arrived", "noshow", "cancelled", "entered-in-error"},
    "checked-in": {"arrived", "fulfilled", "cancelled", "entered-in-error"},
    "arrived": {"fulfilled", "entered-in-error"},
}
CONTRACT_FINAL = {"fulfilled", "cancelled", "noshow", "entered-in-error"}
CONTRACT_STATUSES = {
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
}
#: Statuses after which the appointment no longer holds its slot.
RELEASING = {"cancelled", "noshow", "entered-in-error"}


def test_status_values_are_fhirs() -> None:
    assert {s.value for s in AppointmentStatus} == CONTRACT_STATUSES


def test_transitions_are_exactly_the_contract_graph() -> None:
    actual = {src.value: {dst.value for dst in dsts} for src, dsts in TRANSITIONS.items() if dsts}
    assert actual == CONTRACT_EDGES


@pytest.mark.parametrize("src", list(AppointmentStatus))
@pytest.mark.parametrize("dst", list(AppointmentStatus))
def test_can_transition_on_every_pair(src: AppointmentStatus, dst: AppointmentStatus) -> None:
    assert can_transition(src, dst) is (dst.value in CONTRACT_EDGES.get(src.value, set()))


def test_final_states_have_no_exits() -> None:
    assert {s.value for s in FINAL} == CONTRACT_FINAL
    for status in AppointmentStatus:
        if status in FINAL:
            assert not TRANSITIONS.get(status), status
            assert not any(can_transition(status, dst) for dst in AppointmentStatus)


def test_waitlist_status_is_not_part_of_the_graph() -> None:
    assert not any(can_transition(S.WAITLIST, dst) for dst in AppointmentStatus)
    assert not any(can_transition(src, S.WAITLIST) for src in AppointmentStatus)


def test_active_statuses_are_the_non_final_ones_of_the_graph() -> None:
    assert {s.value for s in ACTIVE} == set(CONTRACT_EDGES)
    assert not ACTIVE & FINAL


# --- through the use cases ------------------------------------------------------------------------


def _fresh(proposed: bool) -> tuple[InMemoryState, str, str]:
    """A state with one appointment (booked, or proposed via the portal) on one slot."""
    state = InMemoryState()
    schedule = create_schedule(state)
    slot = create_slot(state, schedule["id"], at(9))["id"]
    if proposed:
        command = cmd("portal.appointment.requested", requestId="r", patientId="p", slotId=slot, serviceType="s")
        appointment = ok(state.run(command))
    else:
        appointment = ok(book(state, slot, "p"))
    return state, appointment["id"], slot


def during() -> Context:
    """Ten minutes into the 09:00 appointment: inside its check-in window and after its start, so the
    time rules allow every edge of the graph (they have tests of their own)."""
    return make_context(now=at(9, 10))


#: A path from the initial status to every status reachable through UpdateAppointmentStatus.
PATHS: dict[str, tuple[bool, list[str]]] = {
    "proposed": (True, []),
    "pending": (True, ["pending"]),
    "booked": (False, []),
    "checked-in": (False, ["checked-in"]),
    "arrived": (False, ["arrived"]),
    "fulfilled": (False, ["arrived", "fulfilled"]),
    "cancelled": (False, ["cancelled"]),
    "noshow": (False, ["noshow"]),
    "entered-in-error": (False, ["entered-in-error"]),
}


@pytest.mark.parametrize("src", sorted(PATHS))
@pytest.mark.parametrize("dst", sorted(CONTRACT_STATUSES))
def test_update_status_accepts_exactly_the_graphs_edges(src: str, dst: str) -> None:
    proposed, path = PATHS[src]
    state, appointment_id, _ = _fresh(proposed)
    for status in path:
        ok(state.run(cmd("appointment.status", appointmentId=appointment_id, status=status), during()))
    before = state.get(Appointment, appointment_id)
    assert before.status.value == src

    decision = state.run(cmd("appointment.status", appointmentId=appointment_id, status=dst), during())
    if dst in CONTRACT_EDGES.get(src, set()):
        data = ok(decision)
        assert data["status"] == dst
        assert data["version"] == before.version + 1
        assert [e.type for e in decision.events][0] == f"appointment.{dst}"
    else:
        assert decision.error is not None
        assert decision.error.code is ErrorCode.INVALID_STATUS_TRANSITION
        assert decision.error.as_reply()["error"]["status"] == 409
        assert decision.changes == [] and decision.events == []
        assert state.get(Appointment, appointment_id) == before


def _slot_matches(status: str, slot: Slot) -> bool:
    if status in RELEASING:
        return slot.status.value == "free"
    if status == "proposed":
        return slot.status.value == "busy-tentative"
    return slot.status.value == "busy"


@settings(max_examples=150, deadline=None, database=None)
@given(
    proposed=st.booleans(),
    steps=st.lists(
        st.tuples(st.sampled_from(sorted(CONTRACT_STATUSES)), st.sampled_from(["none", "current", "stale"])),
        max_size=12,
    ),
)
def test_random_status_updates_follow_the_graph(proposed: bool, steps: list[tuple[str, str]]) -> None:
    state, appointment_id, slot_id = _fresh(proposed)
    for target, version_mode in steps:
        before = state.get(Appointment, appointment_id)
        body: dict[str, Any] = {"appointmentId": appointment_id, "status": target}
        if version_mode == "current":
            body["expectedVersion"] = before.version
        elif version_mode == "stale":
            body["expectedVersion"] = before.version + 1
        decision = state.run(cmd("appointment.status", **body), during())
        after = state.get(Appointment, appointment_id)

        assert after.status.value in CONTRACT_STATUSES - {"waitlist"}
        if decision.ok:
            assert version_mode != "stale"
            assert target in CONTRACT_EDGES.get(before.status.value, set())
            assert after.status.value == target
            assert after.version == before.version + 1
            assert decision.events[0].type == f"appointment.{target}"
            assert decision.events[0].data["version"] == after.version
        else:
            assert decision.error is not None
            expected = (
                ErrorCode.OPTIMISTIC_LOCK_CONFLICT if version_mode == "stale" else ErrorCode.INVALID_STATUS_TRANSITION
            )
            assert decision.error.code is expected
            assert target not in CONTRACT_EDGES.get(before.status.value, set()) or version_mode == "stale"
            assert decision.changes == [] and decision.events == []
            assert after == before
        assert _slot_matches(after.status.value, state.get(Slot, slot_id))
