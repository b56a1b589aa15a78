"""ExpireWaitlistOffers: each partition's actor ends the waitlist offers it holds that went unanswered.

The actor finds offered entries through its partition's resource indexes (the waiting and offered
entries of each resource; the history is not scanned) and decides, for each offer past its expiry, an
internal `waitlist.expire-offer` command: the entry waits again and the slot goes to the next match
(domain/usecases/waitlist.py). The command's key names the entry and the offered slot, so a sweep that
runs twice (a redelivery, two timers) ends an offer once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents.reminders import DecideInternal
from agents.sweeps import owned_indexes
from domain.commands import ExpireWaitlistOffer, ExpireWaitlistOffers, parse_as
from domain.decisions import State
from domain.ids import token_of
from domain.model import WaitlistEntry, WaitlistStatus
from scheduling.core.wire import Claims, CommandEnvelope
from tables import Table


@dataclass(frozen=True)
class OfferSweep:
    #: token -> ResourceIndex of the resources with waitlist entries
    resources: Table
    partitions: int

    def expired(self, state: State, partition: int, tenant: str, now: datetime) -> Iterator[WaitlistEntry]:
        for index in owned_indexes(self.resources, self.partitions, partition, state):
            for entry_id in index.waitlist:
                entry = state.entity("waitlist", entry_id)
                if (
                    isinstance(entry, WaitlistEntry)
                    and entry.status is WaitlistStatus.OFFERED
                    and entry.offer_expires_at is not None
                    and entry.offer_expires_at <= now
                    and tenant in ("*", entry.tenant_id)
                ):
                    yield entry

    async def sweep(
        self, env: CommandEnvelope, partition: int, state: State, decide_internal: DecideInternal
    ) -> dict[str, Any]:
        """End the offers of `partition` unanswered at `now`; returns a summary for the decision record."""
        command = parse_as(ExpireWaitlistOffers, env.body)
        now = command.now or datetime.now(UTC)
        ended = 0
        for entry in list(self.expired(state, partition, env.claims.tenant, now)):
            key = f"offer-expiry:{entry.id}:{entry.offered_slot_id}"
            body = {"entryId": entry.id, "slotId": entry.offered_slot_id, "now": now.isoformat()}
            await decide_internal(
                token_of(entry.id).encode(),
                CommandEnvelope(
                    delivery_id=key,
                    type=ExpireWaitlistOffer.NAME,
                    body=body,
                    claims=Claims(tenant=entry.tenant_id, sub="scheduling-waitlist"),
                    command_id=key,
                    source="waitlist",
                ),  # fmt: skip
            )
            ended += 1
        return {"expired": ended}
