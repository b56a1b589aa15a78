"""Which idempotency keys a partition's actor forgets (agents/journal.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.journal import expired_keys
from scheduling.core.routing import partition_of

CUTOFF = datetime(2027, 1, 8, tzinfo=UTC)


def _entry(token: str, decided: datetime) -> dict[str, str]:
    return {"routingKey": token, "decidedAt": decided.isoformat()}


def test_only_old_entries_of_the_own_partition_expire() -> None:
    tokens = [f"tok{i:09d}" for i in range(40)]
    mine = [t for t in tokens if partition_of(t, 4) == 1]
    others = [t for t in tokens if partition_of(t, 4) != 1]
    assert mine and others
    entries = [(f"old:{t}", _entry(t, CUTOFF - timedelta(hours=1))) for t in tokens]
    entries += [(f"new:{t}", _entry(t, CUTOFF + timedelta(hours=1))) for t in tokens]
    assert sorted(expired_keys(entries, 1, 4, CUTOFF)) == sorted(f"old:{t}" for t in mine)
