"""The actor's per-partition cache of values and models is bounded by weight, not by count."""

from __future__ import annotations

from typing import Any

from tables.state import Parsed


def test_heavy_values_push_older_ones_out_and_the_latest_stays() -> None:
    table: dict[str, Any] = {}
    cache = Parsed(weight=100)
    for i in range(10):  # day indexes of 30 slots each weigh 31
        table[f"day-{i}"] = {"slots": {str(n): {} for n in range(30)}, "version": 1}
        cache.remember(table, f"day-{i}", table[f"day-{i}"], None)
    table["day-0"] = {"changed": True}  # a value no longer remembered is read from the table again
    assert cache.data(table, "day-0") == {"changed": True}
    table["day-9"] = {"changed": True}  # the latest ones are still remembered
    assert cache.data(table, "day-9")["version"] == 1


def test_a_value_remembered_again_is_counted_once() -> None:
    table: dict[str, Any] = {"k": {"slots": {"a": 1}}}
    cache = Parsed(weight=3)
    for _ in range(5):
        cache.remember(table, "k", table["k"], None)
    cache.remember(table, "other", {"x": 1}, None)
    table["k"] = {"fresh": True}
    assert cache.data(table, "k") == {"slots": {"a": 1}}  # weight 2 + 1: both fit
