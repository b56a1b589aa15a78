"""The journal's entries and which idempotency keys a partition's actor forgets (agents/journal.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.journal import entry, expired_keys, recorded
from domain.decisions import Decision
from scheduling.core.routing import partition_of
from scheduling.core.wire import Claims, CommandEnvelope, DecisionRecord, Unreadable

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


def _record() -> DecisionRecord:
    env = CommandEnvelope(delivery_id="d1", type="slot.create", body={}, claims=Claims(tenant="t1"), command_id="c1")
    return DecisionRecord.of(env, Decision(data={"id": "s1"}), routing_key="tok000000001")


def test_an_entry_holds_the_record_as_text_and_what_expiry_reads() -> None:
    record = _record()
    written = entry(record, record.encode())
    assert recorded(written) == record
    assert expired_keys([("k", written)], partition_of("tok000000001", 4), 4, record.decided_at + timedelta(1)) == ["k"]


def test_an_entry_written_before_the_text_form_is_still_read() -> None:
    record = _record()
    assert recorded(record.dump()) == record


@pytest.mark.parametrize("value", [{"record": "not json"}, {"record": "{}"}, {"routingKey": "x"}, "text", None])
def test_an_entry_that_cannot_be_read_is_unreadable(value: object) -> None:
    with pytest.raises(Unreadable):
        recorded(value)
