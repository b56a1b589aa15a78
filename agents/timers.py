"""The leader's timers: work every actor does over the partition it owns, asked for by one command each."""

from __future__ import annotations

import uuid

from scheduling.core.routing import fan_out
from scheduling.core.wire import Claims
from scheduling.streams.app import Streams


async def to_every_partition(streams: Streams, command_type: str, sub: str) -> None:
    claims = Claims(tenant="*", sub=sub, scope="scheduling:admin")
    tick = f"{command_type}-{uuid.uuid4().hex}"
    for partition, env in fan_out(streams.settings.partitions, command_type, claims, {}, tick, "timer"):
        await streams.send(streams.commands.get_topic_name(), command_type.encode(), env.encode(), partition)


def register(streams: Streams) -> None:
    """Reminders, the waitlist's offer expiry, the holds' expiry and a page of idempotency-key expiry every minute,
    on the leader worker only."""

    async def dispatch_reminders() -> None:
        await to_every_partition(streams, "reminder.dispatch", "scheduling-reminders")

    async def expire_waitlist_offers() -> None:
        await to_every_partition(streams, "waitlist.expire-offers", "scheduling-waitlist")

    async def expire_holds() -> None:
        await to_every_partition(streams, "holds.expire", "scheduling-holds")

    async def expire_idempotency_keys() -> None:
        await to_every_partition(streams, "journal.expire", "scheduling-journal")

    streams.app.timer(60.0, on_leader=True, name="scheduling.dispatch_reminders")(dispatch_reminders)
    streams.app.timer(60.0, on_leader=True, name="scheduling.expire_waitlist_offers")(expire_waitlist_offers)
    streams.app.timer(60.0, on_leader=True, name="scheduling.expire_holds")(expire_holds)
    streams.app.timer(60.0, on_leader=True, name="scheduling.expire_idempotency_keys")(expire_idempotency_keys)
