"""The leader's timers: work every actor does over the partition it owns, asked for by one command each."""

from __future__ import annotations

import uuid

from scheduling.faust_app import app, commands_topic, settings
from scheduling.routing import fan_out
from scheduling.wire import Claims


async def _to_every_partition(command_type: str, sub: str) -> None:
    claims = Claims(tenant="*", sub=sub, scope="scheduling:admin")
    tick = f"{command_type}-{uuid.uuid4().hex}"
    for partition, env in fan_out(settings.partitions, command_type, claims, {}, tick, "timer"):
        await app.producer.send_and_wait(
            commands_topic.get_topic_name(), command_type.encode(), env.encode(), partition, None, None
        )


@app.timer(60.0, on_leader=True)
async def dispatch_reminders() -> None:
    await _to_every_partition("reminder.dispatch", "scheduling-reminders")


@app.timer(3600.0, on_leader=True)
async def expire_idempotency_keys() -> None:
    await _to_every_partition("journal.expire", "scheduling-journal")
