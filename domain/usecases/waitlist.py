"""Use cases of the waitlist: adding an entry, fulfilling it (verified on the appointment's partition when that is
another one), offering a freed slot to the best waiting entry, and ending offers (declined, cancelled, expired).

An offer holds for the slot's schedule's `waitlistOfferMinutes`. When it ends unanswered the entry waits again
and the slot, if still free, is offered to the next match; an entry is never offered a slot it declined or let
expire. Offers end on the entry's partition; the slot is re-offered on its own partition (`ReofferSlot`), where
its current status is known.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain import commands as c
from domain.decisions import Session
from domain.errors import DomainError, ErrorCode, validation_error
from domain.ids import mint, resource_token, token_of
from domain.model import Appointment, Slot, SlotStatus, WaitlistEntry, WaitlistStatus
from domain.resource import ResourceIndex
from domain.usecases.common import _check_patient, _closed, _rules

#: how many declined slots an entry remembers (the latest): a bound on its size, far above any real use
MAX_DECLINED = 200


def add_to_waitlist(cmd: c.AddToWaitlist, session: Session) -> dict[str, Any]:
    _check_patient(session, cmd.patient_id)
    tenant = session.ctx.tenant
    token = resource_token(tenant, cmd.provider_id or "*")
    entry = WaitlistEntry(
        id=mint("wl", token, tenant, session.ctx.command_id),
        tenant_id=tenant,
        patient_id=cmd.patient_id,
        provider_id=cmd.provider_id,
        location_id=cmd.location_id,
        service_type=cmd.service_type,
        requested_period=cmd.requested_period,
        priority=cmd.priority,
        created_at=session.ctx.now,
    )
    saved = session.save(entry)
    index = session.index(token)
    session.save_index(index.model_copy(update={"waitlist": [*index.waitlist, entry.id]}))
    return saved.dump()


def fulfill_waitlist(cmd: c.FulfillWaitlistEntry, session: Session) -> dict[str, Any]:
    """Fulfil an entry with an appointment of its patient, verified where the appointment lives.

    An appointment of another resource lives on another partition: it is checked there (tenant,
    existence, patient) by a follow-up command, which hands the fulfilment back to this entry's
    partition; the caller is answered by the last step, with its refusal or the fulfilled entry.
    """
    entry = _fulfillable(session, cmd.entry_id)
    _check_patient(session, entry.patient_id)
    if token_of(cmd.appointment_id) != token_of(entry.id):
        body = {"entryId": entry.id, "appointmentId": cmd.appointment_id, "patientId": entry.patient_id}
        session.follow_up(token_of(cmd.appointment_id), c.VerifyWaitlistAppointment.NAME, body, carries_reply=True)
        return entry.dump()
    _check_appointment_of(session, cmd.appointment_id, entry.patient_id)
    return _fulfil(session, entry, cmd.appointment_id)


def verify_waitlist_appointment(cmd: c.VerifyWaitlistAppointment, session: Session) -> dict[str, Any]:
    """Internal, on the appointment's partition: the appointment exists for this tenant and this patient."""
    _check_appointment_of(session, cmd.appointment_id, cmd.patient_id)
    body = {"entryId": cmd.entry_id, "appointmentId": cmd.appointment_id}
    session.follow_up(token_of(cmd.entry_id), c.CompleteWaitlistFulfilment.NAME, body, carries_reply=True)
    return {"entryId": cmd.entry_id, "appointmentId": cmd.appointment_id}


def complete_waitlist_fulfilment(cmd: c.CompleteWaitlistFulfilment, session: Session) -> dict[str, Any]:
    """Internal, back on the entry's partition: the appointment was verified; the entry may have moved on since."""
    return _fulfil(session, _fulfillable(session, cmd.entry_id), cmd.appointment_id)


def _fulfillable(session: Session, entry_id: str) -> WaitlistEntry:
    entry = session.get(WaitlistEntry, entry_id, ErrorCode.WAITLIST_ENTRY_NOT_FOUND)
    if entry.status not in {WaitlistStatus.WAITING, WaitlistStatus.OFFERED}:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"a {entry.status.value} waitlist entry cannot be fulfilled",
            {"from": entry.status.value, "to": WaitlistStatus.FULFILLED.value},
        )
    return entry


def _check_appointment_of(session: Session, appointment_id: str, patient_id: str) -> None:
    appointment = session.get(Appointment, appointment_id, ErrorCode.APPOINTMENT_NOT_FOUND)
    if appointment.patient_id != patient_id:
        raise validation_error([{"field": "appointmentId", "message": "the appointment is for another patient"}])


def _fulfil(session: Session, entry: WaitlistEntry, appointment_id: str) -> dict[str, Any]:
    saved = session.save(
        entry.model_copy(
            update={"status": WaitlistStatus.FULFILLED, "appointment_id": appointment_id, "offer_expires_at": None}
        )
    )
    _leave_index(session, entry)
    session.emit("waitlist.fulfilled", saved)
    return saved.dump()


def _leave_index(session: Session, entry: WaitlistEntry) -> None:
    index = session.index(token_of(entry.id))
    session.save_index(index.model_copy(update={"waitlist": [w for w in index.waitlist if w != entry.id]}))


def decline_offer(cmd: c.DeclineWaitlistOffer, session: Session) -> dict[str, Any]:
    """The patient (or staff for them) says no to the offer: the entry waits again, the slot goes to the next."""
    entry = session.get(WaitlistEntry, cmd.entry_id, ErrorCode.WAITLIST_ENTRY_NOT_FOUND)
    _check_patient(session, entry.patient_id)
    if entry.status is not WaitlistStatus.OFFERED or entry.offered_slot_id is None:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"a {entry.status.value} waitlist entry has no offer to decline",
            {"from": entry.status.value, "to": WaitlistStatus.WAITING.value},
        )
    return _end_offer(session, entry).dump()


def cancel_entry(cmd: c.CancelWaitlistEntry, session: Session) -> dict[str, Any]:
    """The entry leaves the waitlist; a slot it was offered goes to the next match."""
    entry = session.get(WaitlistEntry, cmd.entry_id, ErrorCode.WAITLIST_ENTRY_NOT_FOUND)
    _check_patient(session, entry.patient_id)
    if entry.status not in {WaitlistStatus.WAITING, WaitlistStatus.OFFERED}:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"a {entry.status.value} waitlist entry cannot be cancelled",
            {"from": entry.status.value, "to": WaitlistStatus.CANCELLED.value},
        )
    saved = session.save(
        entry.model_copy(update={"status": WaitlistStatus.CANCELLED, "offered_slot_id": None, "offer_expires_at": None})
    )
    _leave_index(session, entry)
    session.emit("waitlist.cancelled", saved)
    if entry.offered_slot_id is not None and entry.status is WaitlistStatus.OFFERED:
        _reoffer(session, entry.offered_slot_id, token_of(entry.id))
    return saved.dump()


def expire_offer(cmd: c.ExpireWaitlistOffer, session: Session) -> dict[str, Any]:
    """Internal (the offer sweep): end the offer if it is still the one found, unanswered past its expiry."""
    entry = session.find(WaitlistEntry, cmd.entry_id)
    if (
        entry is None
        or entry.status is not WaitlistStatus.OFFERED
        or entry.offered_slot_id != cmd.slot_id
        or entry.offer_expires_at is None
        or entry.offer_expires_at > (cmd.now or session.ctx.now)
    ):
        return {"entryId": cmd.entry_id, "expired": False}
    _end_offer(session, entry)
    return {"entryId": cmd.entry_id, "expired": True}


def _end_offer(session: Session, entry: WaitlistEntry) -> WaitlistEntry:
    """Back to waiting, never to be offered this slot again; the slot is offered to the next match."""
    assert entry.offered_slot_id is not None
    declined = [*[s for s in entry.declined_slot_ids if s != entry.offered_slot_id], entry.offered_slot_id]
    saved = session.save(
        entry.model_copy(
            update={
                "status": WaitlistStatus.WAITING,
                "offered_slot_id": None,
                "offer_expires_at": None,
                "declined_slot_ids": declined[-MAX_DECLINED:],
            }
        )
    )
    _reoffer(session, entry.offered_slot_id, token_of(entry.id))
    return saved


def _reoffer(session: Session, slot_id: str, here: str) -> None:
    """Offer the slot again where it lives: at once if that is `here` (this decision's resource), else by a
    follow-up to its partition."""
    if token_of(slot_id) != here:
        session.follow_up(token_of(slot_id), c.ReofferSlot.NAME, {"slotId": slot_id})
        return
    reoffer_slot(c.ReofferSlot(slot_id=slot_id), session)


def reoffer_slot(cmd: c.ReofferSlot, session: Session) -> dict[str, Any]:
    """Internal, on the slot's partition: still free, still ahead and not inside an exception? Then offer it."""
    slot = session.find(Slot, cmd.slot_id)
    if slot is None or slot.status is not SlotStatus.FREE or _closed(session, slot):
        return {"slotId": cmd.slot_id, "offered": False}
    _offer_to_waitlist(session, slot)
    return {"slotId": cmd.slot_id, "offered": True}


def _matches(entry: WaitlistEntry, slot: Slot) -> bool:
    return (
        entry.status is WaitlistStatus.WAITING
        and slot.id not in entry.declined_slot_ids
        and entry.provider_id in (None, slot.provider_id)
        and entry.location_id in (None, slot.location_id)
        and entry.service_type == slot.service_type
        and entry.requested_period.contains(slot.period)
    )


def _offer_to_waitlist(session: Session, slot: Slot | None) -> None:
    """Tell the best matching waiting entry (priority, then age) that the slot is free. Books nothing.

    Entries for this provider are asked first; if none matches, the entries for any provider
    (kept by the tenant-wide actor on another partition) are asked by a follow-up command.
    """
    if slot is None or slot.start <= session.ctx.now:  # a slot in the past is no offer
        return
    holds = _rules(session, slot.schedule_id).waitlist_offer
    if not _offer_best(session, session.index(token_of(slot.id)), slot, holds):
        minutes = int(holds.total_seconds() // 60)
        body = {"slot": slot.dump(), "offerMinutes": minutes}
        session.follow_up(resource_token(session.ctx.tenant, "*"), c.OfferSlotToWaitlist.NAME, body)


def offer_slot(cmd: c.OfferSlotToWaitlist, session: Session) -> dict[str, Any]:
    if cmd.slot.tenant_id != session.ctx.tenant:
        raise DomainError(ErrorCode.SLOT_NOT_FOUND, f"slot {cmd.slot.id} not found")
    holds = timedelta(minutes=cmd.offer_minutes) if cmd.offer_minutes else _rules(session, None).waitlist_offer
    offered = _offer_best(session, session.index(resource_token(session.ctx.tenant, "*")), cmd.slot, holds)
    return {"slotId": cmd.slot.id, "offered": offered}


def _offer_best(session: Session, index: ResourceIndex, slot: Slot, holds: timedelta) -> bool:
    candidates = [e for eid in index.waitlist if (e := session.find(WaitlistEntry, eid)) and _matches(e, slot)]
    if not candidates:
        return False
    best = min(candidates, key=lambda e: (-e.priority, e.created_at, e.id))
    expires = min(session.ctx.now + holds, slot.start)  # an offer never outlives the slot's start
    offered = session.save(
        best.model_copy(
            update={"status": WaitlistStatus.OFFERED, "offered_slot_id": slot.id, "offer_expires_at": expires}
        )
    )
    session.emit("waitlist.slot-available", offered, {"slot": slot.dump()})
    return True
