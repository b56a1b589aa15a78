"""Expansion of a weekly availability pattern into concrete slot periods.

Days come from dateutil's rrule over local calendar dates; each window is laid
out in the pattern's IANA zone and converted to UTC afterwards, so a 09:00
window stays 09:00 local on both sides of a DST change. Local times that do
not exist (the spring-forward gap) are skipped; ambiguous ones (fall-back)
take their first occurrence, and a slot whose real length would not be
`slotMinutes` because a DST change falls inside it is skipped too. Slots lie
wholly inside the requested range, and where windows overlap the earlier slot
wins, so one expansion never yields overlapping slots.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, FR, MO, SA, SU, TH, TU, WE, rrule

from domain.model import AvailabilityPattern, Period, Weekday

_RRULE_DAYS = {
    Weekday.MON: MO,
    Weekday.TUE: TU,
    Weekday.WED: WE,
    Weekday.THU: TH,
    Weekday.FRI: FR,
    Weekday.SAT: SA,
    Weekday.SUN: SU,
}

#: Upper bound on slots one expansion may produce; larger requests are refused, not truncated.
MAX_SLOTS = 20_000


class PatternTooLarge(ValueError):
    pass


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None)


def expand(pattern: AvailabilityPattern, within: Period) -> list[Period]:
    """Slot periods of `pattern` lying inside `within` (and its validity), by start, never overlapping."""
    zone = ZoneInfo(pattern.timezone)
    start = max(within.start, pattern.valid_from or within.start)
    end = min(within.end, pattern.valid_to or within.end)
    if end <= start:
        return []
    periods: list[Period] = []
    for period in _iterate(pattern, zone, start, end):
        periods.append(period)
        if len(periods) > MAX_SLOTS:
            raise PatternTooLarge(f"the pattern expands to more than {MAX_SLOTS} slots")
    periods.sort(key=lambda p: p.start)
    # All periods have the same length, so overlapping windows only need the last kept period checked.
    kept: list[Period] = []
    for period in periods:
        if not kept or kept[-1].end <= period.start:
            kept.append(period)
    return kept


def _iterate(pattern: AvailabilityPattern, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Period]:
    """The pattern's periods lying in [start, end]: a window's candidates before the range are skipped
    arithmetically, not walked, and those outside it cost one conversion (a booking asks about one slot)."""
    step = timedelta(minutes=pattern.slot_minutes)
    # wall-clock bounds of the range, widened by more than the zone's offset can change inside it
    margin = _SLACK + abs(_offset(end, zone) - _offset(start, zone))
    lo = start.astimezone(zone).replace(tzinfo=None) - margin
    hi = end.astimezone(zone).replace(tzinfo=None) + margin
    for window in pattern.windows:
        days = rrule(
            DAILY,
            dtstart=datetime.combine(lo.date(), datetime.min.time()),
            until=datetime.combine(hi.date(), datetime.min.time()),
            byweekday=[_RRULE_DAYS[d] for d in window.days_of_week],
        )
        for day in days:
            opens = datetime.combine(day.date(), window.start_time)
            skipped = (lo - opens) // step if lo > opens else 0
            local = (opens + skipped * step).replace(tzinfo=zone)
            window_end = datetime.combine(day.date(), window.end_time, tzinfo=zone)
            while local + step <= window_end and local.replace(tzinfo=None) <= hi:
                slot_end = local + step
                utc_start = local.astimezone(UTC)
                # outside the range first (one conversion), before the costlier checks of the wall times
                if start <= utc_start and utc_start + step <= end and _exists(local, zone) and _exists(slot_end, zone):
                    utc_end = slot_end.astimezone(UTC)
                    if utc_end - utc_start == step:
                        yield Period(start=utc_start, end=utc_end)
                local = slot_end


#: more than any daylight-saving change of a zone's offset
_SLACK = timedelta(hours=3)


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    return moment.astimezone(zone).utcoffset() or timedelta()
