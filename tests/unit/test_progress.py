"""Stall detection: a partition with lag whose committed offset does not move (scheduling/streams/lag.py)."""

from __future__ import annotations

from dataclasses import replace

from scheduling.core.config import Settings
from scheduling.streams.lag import LagProbe


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def probe() -> tuple[LagProbe, Clock]:
    clock = Clock()
    return LagProbe(replace(Settings(), stall_seconds=30), clock), clock


def test_a_partition_with_lag_and_no_progress_is_stalled_once_the_limit_passes() -> None:
    lag, clock = probe()
    lag.observe("scheduling-projector", 2, committed=10, lag=5)
    clock.now += 29
    lag.observe("scheduling-projector", 2, committed=10, lag=7)
    assert lag.stalled() == []
    clock.now += 1
    lag.observe("scheduling-projector", 2, committed=10, lag=7)
    assert lag.stalled() == ["scheduling-projector/2"]


def test_moving_or_caught_up_partitions_are_not_stalled() -> None:
    lag, clock = probe()
    lag.observe("scheduling", 0, committed=10, lag=5)
    lag.observe("scheduling-relay", 1, committed=10, lag=0)
    clock.now += 60
    lag.observe("scheduling", 0, committed=11, lag=5)  # moved: the clock starts again
    lag.observe("scheduling-relay", 1, committed=10, lag=0)  # idle, nothing to do
    assert lag.stalled() == []
    clock.now += 31
    lag.observe("scheduling", 0, committed=11, lag=4)
    assert lag.stalled() == ["scheduling/0"]
    lag.observe("scheduling", 0, committed=15, lag=0)  # it moved again: ready
    assert lag.stalled() == []
