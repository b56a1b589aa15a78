"""ExpireHolds: each partition's actor gives up the sagas it decides that are still waiting past their expiry.

A booking or move across resources waits in its home resource's index while its steps run on other
partitions (domain/usecases/sagas.py). If a step's partition is down or slow, the slots held so far would
stay held; the home's sweep settles such a saga as refused (`hold-expired`), which gives back everything it
held, and a step that arrives later is given back by its own settle. The internal command's key names the
saga, so a sweep that runs twice settles it once. Sagas that ended more than FORGET_AFTER past their expiry
are forgotten (their keys deleted): a start is replayed only within moments of its decision (a redelivery
after a crash, from Faust's last commit about a second earlier), so nothing can revive them by then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.reminders import DecideInternal
from agents.sweeps import owned_indexes, owned_saga_keys
from domain.commands import ExpireHolds, SettleSaga, parse_as
from domain.decisions import State
from domain.resource import WaitingSaga
from domain.saga import Failure, SagaPlan
from scheduling.core import metrics
from scheduling.core.wire import Claims, CommandEnvelope
from tables import Table

#: how long after its expiry an ended saga's key is kept
FORGET_AFTER = timedelta(minutes=10)
#: the sweep lets the event loop run after this many keys (tens of thousands of ended sagas are kept at peak)
YIELD_EVERY = 500


@dataclass(frozen=True)
class HoldSweep:
    #: token -> ResourceIndex, and beside each home's index the sagas it decides (`WaitingSaga`)
    resources: Table
    partitions: int

    def waiting(self, state: State, partition: int, sagas: list[WaitingSaga]) -> Iterator[tuple[str, SagaPlan]]:
        """The plans of `partition` still waiting: those of `sagas` (its own), and those kept in its indexes."""
        for saga in sagas:
            if saga.plan is not None:
                yield saga.home, saga.plan
        for index in owned_indexes(self.resources, self.partitions, partition, state):
            for plan in index.sagas.values():  # started before each saga had its own key
                yield index.token, plan

    async def sagas(self, state: State, partition: int, now: datetime) -> tuple[list[WaitingSaga], list[str]]:
        """The sagas of `partition` still waiting (read through the batch's writes), and the keys of those that
        ended FORGET_AFTER past their expiry. An ended saga is told by its stored value alone, never parsed:
        at a few dozen bookings a second thousands are kept, and parsing each of them every minute blocked
        the worker's event loop for tens of seconds."""
        waiting: list[WaitingSaga] = []
        ended: list[str] = []
        for n, (key, home, saga_id) in enumerate(owned_saga_keys(self.resources, self.partitions, partition), 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            stored = self.resources.get(key)
            if not isinstance(stored, dict):
                continue
            if stored.get("plan") is not None:
                saga = state.saga(home, saga_id)
                if saga is not None and saga.plan is not None:
                    waiting.append(saga)
            elif _ended_before(stored, now - FORGET_AFTER):
                ended.append(key)
        return waiting, ended

    async def sweep(
        self, env: CommandEnvelope, partition: int, state: State, decide_internal: DecideInternal
    ) -> dict[str, Any]:
        """Settle the sagas of `partition` still waiting at `now` as refused; returns a summary."""
        command = parse_as(ExpireHolds, env.body)
        now = command.now or datetime.now(UTC)
        sagas, ended = await self.sagas(state, partition, now)
        waiting = list(self.waiting(state, partition, sagas))
        expired = [
            (t, plan) for t, plan in waiting if plan.expires_at <= now and env.claims.tenant in ("*", plan.tenant)
        ]
        for token, plan in expired:
            key = f"hold-expiry:{plan.id}"
            failure = Failure.hold_expired(plan)
            await decide_internal(
                token.encode(),
                CommandEnvelope(
                    delivery_id=key,
                    type=SettleSaga.NAME,
                    body={"plan": plan.dump(), "failure": failure.dump()},
                    claims=Claims(tenant=plan.tenant, sub="scheduling-holds"),
                    command_id=key,
                    source="holds",
                ),
            )
        for key in ended:
            del self.resources[key]
        forgotten = len(ended)
        metrics.HOLDS_EXPIRED.inc(len(expired))
        metrics.OPEN_HOLDS.labels(str(partition)).set(len(waiting) - len(expired))
        return {"expired": len(expired), "open": len(waiting) - len(expired), "forgotten": forgotten}


def _ended_before(stored: dict[str, Any], cutoff: datetime) -> bool:
    """An ended saga's stored value expired before `cutoff` (one that cannot be read is kept)."""
    try:
        return datetime.fromisoformat(str(stored["expires_at"])) < cutoff
    except (KeyError, ValueError):
        return False
