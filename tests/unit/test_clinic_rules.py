"""Clinic rules (issue 11, CONTRACT section 9): booking window, cancellation cut-off, check-in window,
statuses that need the start, reminders that follow a reschedule, and a waitlist that keeps moving."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from fakes import (
    NOW,
    PRACTITIONER,
    SERVICE,
    InMemoryState,
    assert_refused,
    at,
    cmd,
    create_slot,
    event_types,
    iso,
    make_context,
    ok,
    schedule_body,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.booking_policy import CONTRACT_DEFAULTS, rules_of
from domain.decisions import Context, Decision
from domain.errors import HTTP_STATUS, DomainError, ErrorCode
from domain.model import Appointment, BookingPolicy, Slot, WaitlistEntry

PATIENT = "pat-1"


def patient(now: datetime = NOW, who: str = PATIENT) -> Context:
    return make_context(now=now, patient_id=who)


def staff(now: datetime = NOW) -> Context:
    return make_context(now=now)


class Clinic:
    """One practitioner's schedule (optionally with a booking policy) and 30-minute slots from Monday 09:00."""

    def __init__(self, policy: dict[str, Any] | None = None, slots: int = 4, day: int = 0) -> None:
        self.state = InMemoryState()
        body = schedule_body(days=120) | ({"bookingPolicy": policy} if policy is not None else {})
        self.schedule = ok(self.state.run(cmd("schedule.create", **body)))
        self.slots = [create_slot(self.state, self.schedule["id"], at(9, 30 * i, day))["id"] for i in range(slots)]

    def book(self, i: int = 0, ctx: Context | None = None, who: str = PATIENT) -> Decision:
        return self.state.run(cmd("appointment.book", slotId=self.slots[i], patientId=who), ctx or staff())

    def booked(self, i: int = 0) -> dict[str, Any]:
        return ok(self.book(i))

    def run(self, name: str, ctx: Context, **body: Any) -> Decision:
        return self.state.run(cmd(name, **body), ctx)

    def slot(self, i: int) -> Slot:
        return self.state.get(Slot, self.slots[i])


def refused_rule(decision: Decision, rule: str) -> None:
    error = assert_refused(decision, ErrorCode.OUTSIDE_BOOKING_WINDOW, 409)
    assert error["details"]["rule"] == rule


def test_every_new_error_code_has_its_contract_status() -> None:
    assert {code: HTTP_STATUS[ErrorCode(code)] for code in
            ("OUTSIDE_BOOKING_WINDOW", "CANCELLATION_CUTOFF", "OUTSIDE_CHECK_IN_WINDOW")} == {
        "OUTSIDE_BOOKING_WINDOW": 409, "CANCELLATION_CUTOFF": 409, "OUTSIDE_CHECK_IN_WINDOW": 409}  # fmt: skip


# --- booking window -------------------------------------------------------------------------------


@pytest.mark.parametrize("ctx", [staff(at(9, 5)), staff(at(9)), patient(at(9, 5))], ids=["after", "at", "patient"])
def test_nobody_books_a_slot_that_has_started(ctx: Context) -> None:
    clinic = Clinic()
    refused_rule(clinic.book(0, ctx), "started")
    assert clinic.slot(0).status.value == "free"


def test_a_patient_needs_the_minimum_notice_and_staff_do_not() -> None:
    clinic = Clinic()
    refused_rule(clinic.book(0, patient(at(8, 30))), "min-notice")
    ok(clinic.book(0, patient(at(8))))  # exactly 60 minutes ahead
    ok(clinic.book(1, staff(at(9, 29))))  # staff: one minute ahead


def test_a_patient_cannot_book_beyond_the_maximum_advance() -> None:
    clinic = Clinic(slots=1, day=91)
    refused_rule(clinic.book(0, patient()), "max-advance")
    ok(clinic.book(0, staff()))


def test_a_schedules_policy_overrides_the_service_defaults() -> None:
    clinic = Clinic({"minNoticeMinutes": 0, "maxAdvanceDays": 200}, slots=2, day=100)
    ok(clinic.book(0, patient()))
    ok(clinic.book(1, patient(at(9, 29, 100))))


def test_the_service_defaults_apply_where_a_schedule_sets_nothing() -> None:
    clinic = Clinic()
    strict = replace(patient(), policy=CONTRACT_DEFAULTS.model_copy(update={"min_notice_minutes": 2 * 24 * 60}))
    refused_rule(clinic.book(0, strict), "min-notice")


def test_the_rules_a_schedule_resolves_to() -> None:
    own = BookingPolicy.model_validate({"checkInWindow": {"afterMinutes": 5}, "reminderLeadMinutes": [30, 1440, 30]})
    rules = rules_of(own, CONTRACT_DEFAULTS)
    assert rules.check_in_before == timedelta(minutes=60) and rules.check_in_after == timedelta(minutes=5)
    assert rules.reminder_leads == (1440, 30) and rules.waitlist_offer == timedelta(minutes=60)
    assert rules.min_notice == timedelta(minutes=60) and rules.max_advance == timedelta(days=90)


@pytest.mark.parametrize(
    "policy",
    [{"minNoticeMinutes": -1}, {"maxAdvanceDays": 10**6}, {"checkInWindow": {"beforeMinutes": "soon"}},
     {"reminderLeadMinutes": [0]}, {"waitlistOfferMinutes": 0}, {"unknownRule": 1}],
)  # fmt: skip
def test_a_bad_policy_is_refused_with_the_field_named(policy: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as refused:
        cmd("schedule.create", **schedule_body(), bookingPolicy=policy)
    assert refused.value.code is ErrorCode.VALIDATION_FAILED and refused.value.status == 400
    assert all(d["field"].startswith("bookingPolicy") for d in refused.value.details)


def test_the_policy_is_kept_on_the_schedule_as_given() -> None:
    clinic = Clinic({"cancellationCutoffMinutes": 120})
    assert clinic.schedule["bookingPolicy"] == {"cancellationCutoffMinutes": 120}
    assert Clinic().schedule["bookingPolicy"] == {}


@settings(max_examples=200, deadline=None, database=None)
@given(ahead=st.integers(min_value=-3 * 24 * 60, max_value=100 * 24 * 60), as_patient=st.booleans())
def test_a_booking_is_accepted_exactly_inside_its_window(ahead: int, as_patient: bool) -> None:
    """For any `now`, a staff booking needs a slot ahead; a patient's one between 60 minutes and 90 days ahead."""
    clinic = Clinic(slots=1)
    now = at(9) - timedelta(minutes=ahead)
    decision = clinic.book(0, patient(now) if as_patient else staff(now))
    if ahead <= 0:
        refused_rule(decision, "started")
    elif as_patient and ahead < 60:
        refused_rule(decision, "min-notice")
    elif as_patient and ahead > 90 * 24 * 60:
        refused_rule(decision, "max-advance")
    else:
        assert ok(decision)["status"] == "booked"


def test_reschedule_into_a_started_slot_is_refused() -> None:
    clinic = Clinic()
    appointment = clinic.booked(2)
    decision = clinic.run("appointment.reschedule", staff(at(9, 10)), appointmentId=appointment["id"],
                          newSlotId=clinic.slots[0])  # fmt: skip
    refused_rule(decision, "started")


# --- cancellation cut-off -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["appointment.cancel", "appointment.reschedule"])
def test_a_patient_cannot_cancel_or_move_inside_the_cutoff_and_staff_can(name: str) -> None:
    clinic = Clinic({"cancellationCutoffMinutes": 120, "minNoticeMinutes": 0})
    appointment = ok(clinic.book(0, patient()))
    body: dict[str, Any] = {"appointmentId": appointment["id"]}
    if name == "appointment.reschedule":
        body["newSlotId"] = clinic.slots[3]
    late = clinic.run(name, patient(at(7, 30)), **body)
    error = assert_refused(late, ErrorCode.CANCELLATION_CUTOFF, 409)
    assert error["details"]["cutoffMinutes"] == 120
    ok(clinic.run(name, staff(at(7, 30)), **body))


def test_a_patient_may_cancel_before_the_cutoff_and_without_one_until_the_start() -> None:
    clinic = Clinic({"cancellationCutoffMinutes": 120})
    early = ok(clinic.book(0, patient()))
    ok(clinic.run("appointment.cancel", patient(at(6, 59)), appointmentId=early["id"]))
    free = Clinic()
    appointment = ok(free.book(0, patient()))
    ok(free.run("appointment.cancel", patient(at(8, 59)), appointmentId=appointment["id"]))


# --- check-in window and statuses that need the start ---------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "accepted"), [(-61, False), (-60, True), (0, True), (30, True), (31, False)]
)  # fmt: skip
def test_check_in_only_inside_its_window(minutes: int, accepted: bool) -> None:
    clinic = Clinic()
    appointment = clinic.booked(0)
    decision = clinic.run("appointment.check-in", staff(at(9) + timedelta(minutes=minutes)),
                          appointmentId=appointment["id"])  # fmt: skip
    if accepted:
        assert ok(decision)["status"] == "checked-in"
    else:
        error = assert_refused(decision, ErrorCode.OUTSIDE_CHECK_IN_WINDOW, 409)
        assert error["details"] == {"opensAt": iso(at(8)), "closesAt": iso(at(9, 30))}


def test_a_schedules_check_in_window_and_arrived_follows_it() -> None:
    clinic = Clinic({"checkInWindow": {"beforeMinutes": 10, "afterMinutes": 0}})
    appointment = clinic.booked(0)
    early = clinic.run("appointment.status", staff(at(8, 45)), appointmentId=appointment["id"], status="arrived")
    assert_refused(early, ErrorCode.OUTSIDE_CHECK_IN_WINDOW, 409)
    ok(clinic.run("appointment.status", staff(at(8, 50)), appointmentId=appointment["id"], status="arrived"))


@pytest.mark.parametrize("status", ["noshow", "fulfilled"])
def test_noshow_and_fulfilled_only_once_started(status: str) -> None:
    clinic = Clinic()
    appointment = clinic.booked(0)
    if status == "fulfilled":
        ok(clinic.run("appointment.check-in", staff(at(8, 50)), appointmentId=appointment["id"]))
    before = clinic.run("appointment.status", staff(at(8, 55)), appointmentId=appointment["id"], status=status)
    error = assert_refused(before, ErrorCode.INVALID_STATUS_TRANSITION, 409)
    assert error["details"]["reason"] == "not-started"
    ok(clinic.run("appointment.status", staff(at(9)), appointmentId=appointment["id"], status=status))


# --- reminders follow the appointment -------------------------------------------------------------


def test_a_reschedule_clears_the_reminders_sent_for_the_old_time() -> None:
    clinic = Clinic()
    appointment = clinic.booked(0)
    ok(clinic.run("reminder.sent", staff(), appointmentId=appointment["id"], leadMinutes=1440))
    assert clinic.state.get(Appointment, appointment["id"]).reminders_sent == [1440]
    moved = ok(
        clinic.run("appointment.reschedule", staff(), appointmentId=appointment["id"], newSlotId=clinic.slots[2])
    )
    assert moved.get("remindersSent", []) == []


# --- waitlist that keeps moving -------------------------------------------------------------------


def wait(clinic: Clinic, who: str, ctx_now: datetime = NOW, priority: int = 0) -> str:
    body = {"patientId": who, "providerId": PRACTITIONER, "serviceType": SERVICE, "priority": priority,
            "requestedPeriod": {"start": iso(at(0)), "end": iso(at(23))}}  # fmt: skip
    return str(ok(clinic.run("waitlist.add", make_context(now=ctx_now), **body))["id"])


def entry(clinic: Clinic, entry_id: str) -> WaitlistEntry:
    return clinic.state.get(WaitlistEntry, entry_id)


def offered_clinic(policy: dict[str, Any] | None = None) -> tuple[Clinic, str, str]:
    """Two waiting entries (the first one first in line) and a booked slot freed: the first is offered it."""
    clinic = Clinic(policy)
    first, second = wait(clinic, "pat-a", priority=5), wait(clinic, "pat-b")
    appointment = clinic.booked(0)
    freed = clinic.run("appointment.cancel", staff(), appointmentId=appointment["id"])
    assert event_types(freed) == ["appointment.cancelled", "waitlist.slot-available"]
    return clinic, first, second


def test_an_offer_holds_for_the_schedules_offer_minutes_and_never_past_the_start() -> None:
    clinic, first, _ = offered_clinic({"waitlistOfferMinutes": 15})
    assert entry(clinic, first).offer_expires_at == NOW + timedelta(minutes=15)
    late, first_in_line, _ = offered_clinic({"waitlistOfferMinutes": 10_000})
    assert entry(late, first_in_line).offer_expires_at == at(9)


def test_declining_returns_the_entry_to_waiting_and_offers_the_slot_to_the_next() -> None:
    clinic, first, second = offered_clinic()
    decision = clinic.run("waitlist.decline", patient(who="pat-a"), entryId=first)
    assert ok(decision)["status"] == "waiting"
    assert event_types(decision) == ["waitlist.slot-available"]
    assert decision.events[0].data["id"] == second
    assert entry(clinic, first).declined_slot_ids == [clinic.slots[0]]
    assert entry(clinic, second).offered_slot_id == clinic.slots[0]
    # the second declines too: the slot is never offered back to the first
    assert event_types(clinic.run("waitlist.decline", staff(), entryId=second)) == []
    assert entry(clinic, first).status.value == "waiting"


def test_an_entry_without_an_offer_cannot_decline() -> None:
    clinic, first, second = offered_clinic()
    assert_refused(clinic.run("waitlist.decline", staff(), entryId=second), ErrorCode.INVALID_STATUS_TRANSITION, 409)
    assert_refused(clinic.run("waitlist.decline", staff(), entryId="wl-x"), ErrorCode.WAITLIST_ENTRY_NOT_FOUND, 404)


def test_a_patient_declines_or_cancels_only_its_own_entries() -> None:
    clinic, first, _ = offered_clinic()
    for name in ("waitlist.decline", "waitlist.cancel"):
        assert_refused(clinic.run(name, patient(who="pat-b"), entryId=first), ErrorCode.FORBIDDEN, 403)
    assert entry(clinic, first).status.value == "offered"


def test_cancelling_an_entry_removes_it_and_passes_its_offer_on() -> None:
    clinic, first, second = offered_clinic()
    decision = clinic.run("waitlist.cancel", patient(who="pat-a"), entryId=first)
    assert ok(decision)["status"] == "cancelled"
    assert event_types(decision) == ["waitlist.cancelled", "waitlist.slot-available"]
    assert entry(clinic, second).status.value == "offered"
    assert first not in clinic.state.indexes[clinic_token(clinic)].waitlist
    again = clinic.run("waitlist.cancel", staff(), entryId=first)
    assert_refused(again, ErrorCode.INVALID_STATUS_TRANSITION, 409)
    waiting = clinic.run("waitlist.cancel", staff(), entryId=second)
    assert event_types(waiting) == ["waitlist.cancelled"]  # the slot goes to nobody: no entry is left


def clinic_token(clinic: Clinic) -> str:
    return str(clinic.schedule["id"]).split("-")[1]


def test_an_expired_offer_returns_to_waiting_and_the_next_match_is_offered() -> None:
    clinic, first, second = offered_clinic({"waitlistOfferMinutes": 30})
    body = {"entryId": first, "slotId": clinic.slots[0]}
    early = ok(clinic.run("waitlist.expire-offer", staff(NOW + timedelta(minutes=29)), **body))
    assert early == {"entryId": first, "expired": False} and entry(clinic, first).status.value == "offered"
    expired = clinic.run("waitlist.expire-offer", staff(NOW + timedelta(minutes=30)), **body)
    assert ok(expired)["expired"] is True
    assert event_types(expired) == ["waitlist.slot-available"]
    assert entry(clinic, first).status.value == "waiting" and entry(clinic, second).status.value == "offered"
    # a second sweep of the same offer changes nothing
    assert ok(clinic.run("waitlist.expire-offer", staff(NOW + timedelta(hours=1)), **body))["expired"] is False


def test_an_offer_of_a_slot_taken_meanwhile_passes_to_nobody() -> None:
    clinic, first, second = offered_clinic()
    ok(clinic.book(0))  # staff booked the freed slot for someone else while the offer was open
    decision = clinic.run("waitlist.decline", staff(), entryId=first)
    assert event_types(decision) == []
    assert entry(clinic, second).status.value == "waiting"


def test_a_booked_appointment_is_active_after_all_of_it() -> None:
    """The rules never leave a half-made change: a refused booking holds nothing."""
    clinic = Clinic()
    refused_rule(clinic.book(0, staff(at(10))), "started")
    assert clinic.state.all(Appointment) == [] and clinic.slot(0).status.value == "free"
