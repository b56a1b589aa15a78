"""When booking, cancelling and checking in are allowed: a schedule's `bookingPolicy` (CONTRACT section 9).

A schedule states only what it changes; every field it leaves out follows the service-wide default
(`SCHEDULING_<FIELD>`, read by the service's configuration, else the contract's value), resolved at
decision time, so changing a default applies to every schedule that did not set its own. The rules
are decided with the decision's `now`; `min-notice`, `max-advance` and the cancellation cut-off bind
patient tokens only, staff are trusted to make exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import DomainError, ErrorCode
from domain.model import BookingPolicy, CheckInWindow

#: the contract's defaults (section 9); the service's configuration may override each
CONTRACT_DEFAULTS = BookingPolicy(
    min_notice_minutes=60,
    max_advance_days=90,
    cancellation_cutoff_minutes=0,
    check_in_window=CheckInWindow(before_minutes=60, after_minutes=30),
    reminder_lead_minutes=[1440, 120],
    waitlist_offer_minutes=60,
    buffer_before_minutes=0,
    buffer_after_minutes=0,
)


@dataclass(frozen=True)
class Rules:
    """A schedule's policy resolved against the defaults: what a decision checks."""

    min_notice: timedelta
    max_advance: timedelta
    cancellation_cutoff: timedelta
    check_in_before: timedelta
    check_in_after: timedelta
    reminder_leads: tuple[int, ...]
    waitlist_offer: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    #: active appointments per resource and local day; None: no limit
    max_per_day: int | None

    def check_booking(self, start: datetime, now: datetime, *, patient: bool) -> None:
        """May a slot starting at `start` be booked (or rescheduled into) now?"""
        if start <= now:
            raise _outside("started", "the slot has already started", start=start)
        if patient and start < now + self.min_notice:
            raise _outside("min-notice", "the slot starts too soon to be booked by a patient",
                           earliest=now + self.min_notice)  # fmt: skip
        if patient and start > now + self.max_advance:
            raise _outside("max-advance", "the slot is too far ahead to be booked by a patient",
                           latest=now + self.max_advance)  # fmt: skip

    def check_cancellation(self, start: datetime, now: datetime, *, patient: bool) -> None:
        """May a patient still cancel or move an appointment starting at `start`? Staff always may."""
        if patient and self.cancellation_cutoff and now > start - self.cancellation_cutoff:
            raise DomainError(
                ErrorCode.CANCELLATION_CUTOFF,
                "too close to the start for a patient to cancel or reschedule; the clinic can",
                {"cutoffMinutes": int(self.cancellation_cutoff.total_seconds() // 60),
                 "latest": (start - self.cancellation_cutoff).isoformat()},
            )  # fmt: skip

    def check_in_window(self, start: datetime, now: datetime) -> None:
        opens, closes = start - self.check_in_before, start + self.check_in_after
        if not opens <= now <= closes:
            raise DomainError(
                ErrorCode.OUTSIDE_CHECK_IN_WINDOW,
                "check-in is open from " + opens.isoformat() + " until " + closes.isoformat(),
                {"opensAt": opens.isoformat(), "closesAt": closes.isoformat()},
            )


def check_started(start: datetime, now: datetime, status: str) -> None:
    """`fulfilled` and `noshow` describe an appointment that has begun."""
    if now < start:
        raise DomainError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"an appointment cannot be {status} before it starts",
            {"reason": "not-started", "to": status, "start": start.isoformat()},
        )


def _outside(rule: str, message: str, **times: datetime) -> DomainError:
    details: dict[str, str] = {"rule": rule, **{name: t.isoformat() for name, t in times.items()}}
    return DomainError(ErrorCode.OUTSIDE_BOOKING_WINDOW, message, details)


def rules_of(policy: BookingPolicy, defaults: BookingPolicy) -> Rules:
    """`policy` over `defaults` (which sets every field) as the rules a decision applies."""
    window = policy.check_in_window or CheckInWindow()
    default_window = defaults.check_in_window or CheckInWindow()

    def pick(own: int | None, default: int | None) -> int:
        value = own if own is not None else default
        assert value is not None, "the service-wide defaults set every field"
        return value

    leads = policy.reminder_lead_minutes if policy.reminder_lead_minutes is not None else defaults.reminder_lead_minutes
    return Rules(
        min_notice=timedelta(minutes=pick(policy.min_notice_minutes, defaults.min_notice_minutes)),
        max_advance=timedelta(days=pick(policy.max_advance_days, defaults.max_advance_days)),
        cancellation_cutoff=timedelta(
            minutes=pick(policy.cancellation_cutoff_minutes, defaults.cancellation_cutoff_minutes)
        ),
        check_in_before=timedelta(minutes=pick(window.before_minutes, default_window.before_minutes)),
        check_in_after=timedelta(minutes=pick(window.after_minutes, default_window.after_minutes)),
        reminder_leads=tuple(sorted(set(leads or ()), reverse=True)),
        waitlist_offer=timedelta(minutes=pick(policy.waitlist_offer_minutes, defaults.waitlist_offer_minutes)),
        buffer_before=timedelta(minutes=pick(policy.buffer_before_minutes, defaults.buffer_before_minutes)),
        buffer_after=timedelta(minutes=pick(policy.buffer_after_minutes, defaults.buffer_after_minutes)),
        max_per_day=policy.max_per_day if policy.max_per_day is not None else defaults.max_per_day,
    )
