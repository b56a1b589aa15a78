"""Expansion of weekly availability patterns (domain/pattern.py), including DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.model import AvailabilityPattern, Period
from domain.pattern import MAX_SLOTS, PatternTooLarge, expand

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAY_INDEX = {name: i for i, name in enumerate(ALL_DAYS)}


def pattern(
    windows: list[tuple[list[str], str, str]],
    minutes: int = 30,
    zone: str = "UTC",
    **extra: Any,
) -> AvailabilityPattern:
    return AvailabilityPattern.model_validate(
        {
            "windows": [{"daysOfWeek": d, "startTime": s, "endTime": e} for d, s, e in windows],
            "slotMinutes": minutes,
            "timezone": zone,
            **extra,
        }
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def period(start: str, end: str) -> Period:
    return Period(start=utc(start), end=utc(end))


def starts(periods: list[Period]) -> list[str]:
    return [p.start.strftime("%Y-%m-%d %H:%M") for p in periods]


# --- examples ---------------------------------------------------------------------------------------


def test_weekday_selection_and_count() -> None:
    two_weeks = period("2026-03-02T00:00", "2026-03-16T00:00")  # Monday to Monday
    result = expand(pattern([(["mon", "wed", "fri"], "09:00", "12:00")]), two_weeks)
    assert len(result) == 6 * 6
    assert {p.start.weekday() for p in result} == {0, 2, 4}
    assert starts(result)[:7] == [
        "2026-03-02 09:00",
        "2026-03-02 09:30",
        "2026-03-02 10:00",
        "2026-03-02 10:30",
        "2026-03-02 11:00",
        "2026-03-02 11:30",
        "2026-03-04 09:00",
    ]
    assert all(p.end - p.start == timedelta(minutes=30) for p in result)


def test_a_window_that_does_not_divide_evenly_drops_the_rest() -> None:
    day = period("2026-03-02T00:00", "2026-03-03T00:00")
    assert starts(expand(pattern([(["mon"], "09:00", "10:00")], minutes=40), day)) == ["2026-03-02 09:00"]


def test_several_windows_on_one_day() -> None:
    day = period("2026-03-07T00:00", "2026-03-08T00:00")  # a Saturday
    p = pattern([(["sat"], "14:00", "15:00"), (["sat", "sun"], "08:00", "09:00")], minutes=60)
    assert starts(expand(p, day)) == ["2026-03-07 08:00", "2026-03-07 14:00"]


def test_overlapping_windows_never_yield_overlapping_slots() -> None:
    day = period("2026-03-02T00:00", "2026-03-03T00:00")
    p = pattern([(["mon"], "09:00", "10:00"), (["mon"], "09:30", "10:30"), (["mon"], "09:00", "10:00")])
    assert starts(expand(p, day)) == ["2026-03-02 09:00", "2026-03-02 09:30", "2026-03-02 10:00"]


def test_fixed_offset_zone() -> None:
    day = period("2026-03-02T00:00", "2026-03-03T00:00")
    result = expand(pattern([(["mon"], "09:00", "10:00")], minutes=60, zone="Asia/Kolkata"), day)
    assert starts(result) == ["2026-03-02 03:30"]


@pytest.mark.parametrize(
    ("zone", "first_day", "utc_hours"),
    [
        # spring forward on Sunday 2026-03-29: 09:00 CET = 08:00Z, 09:00 CEST = 07:00Z
        ("Europe/Berlin", "2026-03-27", [8, 8, 7, 7]),
        # fall back on Sunday 2026-10-25: 09:00 CEST = 07:00Z, 09:00 CET = 08:00Z
        ("Europe/Berlin", "2026-10-23", [7, 7, 8, 8]),
        # spring forward on Sunday 2026-03-08: 09:00 EST = 14:00Z, 09:00 EDT = 13:00Z
        ("America/New_York", "2026-03-06", [14, 14, 13, 13]),
    ],
)
def test_a_nine_oclock_window_stays_nine_oclock_local_across_dst(
    zone: str, first_day: str, utc_hours: list[int]
) -> None:
    start = utc(f"{first_day}T00:00")
    result = expand(
        pattern([(ALL_DAYS, "09:00", "10:00")], minutes=60, zone=zone),
        Period(start=start, end=start + timedelta(days=4)),
    )
    assert [p.start.hour for p in result] == utc_hours
    assert [p.start.day for p in result] == [start.day + i for i in range(4)]
    for p in result:
        local = p.start.astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute) == (9, 0)
        assert p.end - p.start == timedelta(hours=1)


def test_spring_forward_gap_yields_no_slots() -> None:
    weekend = period("2026-03-27T00:00", "2026-03-31T00:00")
    result = expand(pattern([(ALL_DAYS, "02:00", "03:00")], zone="Europe/Berlin"), weekend)
    local_days = [p.start.astimezone(ZoneInfo("Europe/Berlin")).date() for p in result]
    assert date(2026, 3, 29) not in local_days
    assert local_days == [date(2026, 3, d) for d in (27, 27, 28, 28, 30, 30)]


def test_slots_touching_the_gap_are_skipped() -> None:
    day = period("2026-03-28T12:00", "2026-03-29T12:00")
    result = expand(pattern([(["sun"], "01:00", "04:00")], minutes=60, zone="Europe/Berlin"), day)
    # 01:00-02:00 ends in the gap and 02:00-03:00 lies in it; 03:00 CEST is 01:00Z
    assert [(p.start.hour, p.end.hour) for p in result] == [(1, 2)]
    assert result[0].start.astimezone(ZoneInfo("Europe/Berlin")).hour == 3


def test_fall_back_takes_the_first_occurrence_and_keeps_slot_length() -> None:
    day = period("2026-10-24T12:00", "2026-10-25T12:00")
    result = expand(pattern([(["sun"], "01:00", "04:00")], zone="Europe/Berlin"), day)
    assert all(p.end - p.start == timedelta(minutes=30) for p in result)
    # 01:00, 01:30, 02:00, 02:30 CEST are 23:00Z .. 00:30Z; 02:30-03:00 would last 90 minutes and is
    # skipped; 03:00 and 03:30 CET are 02:00Z and 02:30Z
    assert starts(result) == [
        "2026-10-24 23:00",
        "2026-10-24 23:30",
        "2026-10-25 00:00",
        "2026-10-25 02:00",
        "2026-10-25 02:30",
    ]


def test_valid_from_and_valid_to_clip_the_range() -> None:
    week = period("2026-03-02T00:00", "2026-03-09T00:00")
    p = pattern(
        [(ALL_DAYS, "09:00", "10:00")],
        minutes=60,
        validFrom="2026-03-04T00:00:00Z",
        validTo="2026-03-06T09:30:00Z",
    )
    assert starts(expand(p, week)) == ["2026-03-04 09:00", "2026-03-05 09:00"]


@pytest.mark.parametrize(
    "validity",
    [
        {"validFrom": "2026-04-01T00:00:00Z"},
        {"validTo": "2026-03-01T00:00:00Z"},
        {"validFrom": "2026-03-03T10:00:00Z", "validTo": "2026-03-04T09:00:00Z"},
    ],
)
def test_validity_outside_the_range_yields_nothing(validity: dict[str, str]) -> None:
    week = period("2026-03-02T00:00", "2026-03-09T00:00")
    assert expand(pattern([(ALL_DAYS, "09:00", "10:00")], minutes=60, **validity), week) == []


def test_slots_lie_wholly_inside_the_range() -> None:
    p = pattern([(["mon"], "09:00", "11:00")])
    assert starts(expand(p, period("2026-03-02T09:15", "2026-03-02T10:45"))) == [
        "2026-03-02 09:30",
        "2026-03-02 10:00",
    ]


def test_pattern_at_the_slot_limit_expands() -> None:
    hundred_a_day = pattern([(ALL_DAYS, "00:00", "08:20")], minutes=5)
    start = utc("2026-01-01T00:00")
    days = MAX_SLOTS // 100
    assert len(expand(hundred_a_day, Period(start=start, end=start + timedelta(days=days)))) == MAX_SLOTS
    with pytest.raises(PatternTooLarge):
        expand(hundred_a_day, Period(start=start, end=start + timedelta(days=days + 1)))


# --- property -----------------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/St_Johns",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kolkata",
]
#: Range anchors near the 2026 DST changes of those zones (and one far from any).
ANCHORS = [
    datetime(2026, 3, 2, tzinfo=UTC),
    datetime(2026, 3, 24, tzinfo=UTC),
    datetime(2026, 3, 31, tzinfo=UTC),
    datetime(2026, 6, 15, tzinfo=UTC),
    datetime(2026, 9, 28, tzinfo=UTC),
    datetime(2026, 10, 20, tzinfo=UTC),
    datetime(2026, 10, 28, tzinfo=UTC),
]


@st.composite
def windows(draw: st.DrawFn) -> dict[str, Any]:
    days = draw(st.lists(st.sampled_from(ALL_DAYS), min_size=1, max_size=7, unique=True))
    start_q = draw(st.integers(min_value=0, max_value=94))
    end_q = draw(st.integers(min_value=start_q + 1, max_value=95))
    return {"daysOfWeek": days, "startTime": _quarter(start_q), "endTime": _quarter(end_q)}


def _quarter(q: int) -> str:
    return f"{q * 15 // 60:02d}:{q * 15 % 60:02d}"


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[AvailabilityPattern, Period]:
    anchor = draw(st.sampled_from(ANCHORS))
    start = anchor + timedelta(minutes=5 * draw(st.integers(min_value=0, max_value=7 * 24 * 12)))
    length = timedelta(days=draw(st.integers(min_value=7, max_value=21)), minutes=draw(st.integers(0, 24 * 60)))
    within = Period(start=start, end=start + length)
    body: dict[str, Any] = {
        "windows": draw(st.lists(windows(), min_size=1, max_size=3)),
        "slotMinutes": draw(st.sampled_from([10, 15, 20, 30, 60])),
        "timezone": draw(st.sampled_from(ZONES)),
    }
    if draw(st.booleans()):
        body["validFrom"] = (start + timedelta(hours=draw(st.integers(-48, 24 * 14)))).isoformat()
    if draw(st.booleans()):
        body["validTo"] = (start + length + timedelta(hours=draw(st.integers(-24 * 14, 48)))).isoformat()
    if "validFrom" in body and "validTo" in body and body["validTo"] <= body["validFrom"]:
        del body["validTo"]
    return AvailabilityPattern.model_validate(body), within


def _clock(t: time) -> int:
    return t.hour * 60 + t.minute


def _oracle(p: AvailabilityPattern, lo: datetime, hi: datetime) -> list[Period]:
    """Expansion written independently: day by day in local time, a candidate kept when its wall times
    exist and it lasts slotMinutes of real time; overlaps resolved in favour of the earliest."""
    zone = ZoneInfo(p.timezone)
    step = timedelta(minutes=p.slot_minutes)
    found: list[tuple[datetime, datetime]] = []
    day = lo.astimezone(zone).date() - timedelta(days=1)
    while day <= hi.astimezone(zone).date() + timedelta(days=1):
        for w in p.windows:
            if ALL_DAYS[day.weekday()] not in w.days_of_week:
                continue
            minute = _clock(w.start_time)
            while minute + p.slot_minutes <= _clock(w.end_time):
                midnight = datetime(day.year, day.month, day.day)
                walls = [midnight + timedelta(minutes=m) for m in (minute, minute + p.slot_minutes)]
                real = [w.replace(tzinfo=zone).astimezone(UTC) for w in walls]
                exists = all(r.astimezone(zone).replace(tzinfo=None) == w for r, w in zip(real, walls, strict=True))
                if exists and real[1] - real[0] == step and lo <= real[0] and real[1] <= hi:
                    found.append((real[0], real[1]))
                minute += p.slot_minutes
        day += timedelta(days=1)
    kept: list[Period] = []
    for s, e in sorted(set(found)):
        if not kept or kept[-1].end <= s:
            kept.append(Period(start=s, end=e))
    return kept


@settings(max_examples=150, deadline=None, database=None)
@given(scenarios())
def test_expansion_properties(scenario: tuple[AvailabilityPattern, Period]) -> None:
    p, within = scenario
    zone = ZoneInfo(p.timezone)
    step = timedelta(minutes=p.slot_minutes)
    lo = max(within.start, p.valid_from or within.start)
    hi = min(within.end, p.valid_to or within.end)

    result = expand(p, within)

    for slot in result:
        assert slot.end - slot.start == step  # real elapsed time
        assert lo <= slot.start and slot.end <= hi
        local_start, local_end = slot.start.astimezone(zone), slot.end.astimezone(zone)
        assert local_end.replace(tzinfo=None) - local_start.replace(tzinfo=None) == step  # no DST change inside
        assert any(
            ALL_DAYS[local_start.weekday()] in w.days_of_week
            and w.start_time <= local_start.time()
            and local_end.date() == local_start.date()
            and local_end.time() <= w.end_time
            and (_clock(local_start.time()) - _clock(w.start_time)) % p.slot_minutes == 0
            for w in p.windows
        ), (slot, p.windows)
    for earlier, later in zip(result, result[1:], strict=False):
        assert earlier.start < later.start
        assert earlier.end <= later.start
    assert result == _oracle(p, lo, hi)


@settings(max_examples=150, deadline=None, database=None)
@given(scenarios(), st.integers(min_value=0, max_value=24 * 12), st.integers(min_value=1, max_value=24 * 12))
def test_the_periods_starting_in_a_window_need_only_one_slot_length_past_it(
    scenario: tuple[AvailabilityPattern, Period], offset: int, length: int
) -> None:
    """What the upkeep's `offered` rests on (a booking asks it for one slot): expanding to the window's end plus
    one slot length keeps the same periods starting in the window as expanding a whole day further."""
    p, within = scenario
    start = within.start + timedelta(minutes=5 * offset)
    window = Period(start=start, end=start + timedelta(minutes=5 * length))
    narrow = expand(p, Period(start=window.start, end=window.end + timedelta(minutes=p.slot_minutes)))
    wide = expand(p, Period(start=window.start, end=window.end + timedelta(hours=24)))
    assert [s for s in narrow if s.start < window.end] == [s for s in wide if s.start < window.end]
