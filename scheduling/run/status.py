"""`scheduling status`: the operator's view of the consumer groups, partition owners, lag and hot resources."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import replace
from typing import Any

import nats

from scheduling.core.config import Settings
from scheduling.streams import groups, presence


def render(state: dict[str, Any]) -> str:
    """The report as text: per group its members, then one line per partition."""
    lines: list[str] = []
    for group in state["groups"]:
        lines.append(f"group {group['group']} ({group['topic']}): {group['state']}, "
                     f"{len(group['members'])} member(s), lag {group['lag']}")  # fmt: skip
        if "error" in group:
            lines.append(f"  members unknown: {group['error']}")
        for member in group["members"]:
            owned = ",".join(map(str, member["partitions"])) or "-"
            # the member id is what the owner column shows; on Apache Kafka every Faust worker has one client id
            about = ", ".join(f"{what} {member[key]}" for what, key in (("client", "clientId"), ("host", "host"))
                              if member.get(key))  # fmt: skip
            about = f" ({about})" if about else ""
            lines.append(f"  member {member['memberId']}{about} partitions {owned}")
        lines.append(f"  {'partition':>9}  {'committed':>9}  {'end':>9}  {'lag':>6}  owner")
        for row in group["partitions"]:
            lines.append(f"  {row['partition']:>9}  {row['committed']:>9}  {row['end']:>9}  {row['lag']:>6}  "
                         f"{row['owner'] or '-'}")  # fmt: skip
    for worker in state["workers"]:
        tables = "recovered" if worker["tablesRecovered"] else f"recovering, {worker['recoveryRemaining']} records left"
        held = ",".join(map(str, worker["partitions"])) or "-"
        lines.append(f"worker {worker['worker']} (member {worker['memberId']}): partitions {held}, tables {tables}")
    lines.append(f"busiest resources, last {state['busiestWindowSeconds'] // 60} min (commands, partition):")
    lines += [f"  {b['resource']}  {b['commands']}  p{b['partition']}" for b in state["busiest"]] or ["  none"]
    return "\n".join(lines)


async def workers(nats_url: str) -> list[dict[str, Any]]:
    """The workers' own views; none (owners then come from the broker alone) when NATS does not answer."""
    try:
        nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
    except Exception:
        return []
    try:
        return await presence.read(nc.jetstream())
    finally:
        await nc.close()


async def collect(settings: Settings) -> dict[str, Any]:
    return await groups.report(settings, await workers(settings.nats_url))


def main(kafka: str | None, nats_url: str | None, *, as_json: bool) -> int:
    settings = Settings()
    if not (kafka or os.environ.get("KAFKA_BROKER_URL")):
        print("scheduling status: give --kafka HOST:PORT or set KAFKA_BROKER_URL (scheduling dev prints it)",
              file=sys.stderr)  # fmt: skip
        return 2
    settings = replace(settings, kafka_url=kafka or settings.kafka_url, nats_url=nats_url or settings.nats_url)
    state = asyncio.run(asyncio.wait_for(collect(settings), 30))
    print(json.dumps(state, indent=2) if as_json else render(state))
    return 0
