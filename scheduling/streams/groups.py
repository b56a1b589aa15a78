"""Who consumes what: the service's consumer groups, their members, partition owners, offsets and lag.

Read from the broker only (DescribeGroups, OffsetFetch, end offsets, a short tail of the commands topic),
so `scheduling status` needs no worker to be reachable. On the embedded broker the end offset comes from
a Fetch high watermark (broker defect 1). A broker that cannot describe a group still gets offsets and
lag, with the owners left unknown and `error` saying why.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from domain.ids import TOKEN_LENGTH
from scheduling.core.config import COMMANDS_TOPIC, DECISIONS_TOPIC, Settings
from scheduling.streams.broker_guards import true_end_offsets

#: how far back "busiest resources" looks, and how many records per partition it reads at most
RECENT_SECONDS = 300
TAIL_RECORDS = 500
BUSIEST = 10
#: a resource's routing token (the commands' key); the timers' partition-wide commands are keyed by name instead
RESOURCE_KEY = re.compile(rf"[0-9a-f]{{{TOKEN_LENGTH}}}")


def service_groups(settings: Settings) -> dict[str, str]:
    """Consumer group -> the topic it consumes: the actors (the Faust app), the projector and the relay."""
    return {
        settings.app_id: COMMANDS_TOPIC,
        "scheduling-projector": DECISIONS_TOPIC,
        "scheduling-relay": DECISIONS_TOPIC,
    }


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[int, ...]

    def dump(self) -> dict[str, Any]:
        return {"memberId": self.member_id, "clientId": self.client_id, "host": self.host,
                "partitions": list(self.partitions)}  # fmt: skip


def members_of(description: dict[str, Any], topic: str) -> list[Member]:
    """The members of one described group, each with the partitions of `topic` it was assigned."""
    members = []
    for raw in description["members"]:
        assigned: tuple[int, ...] = ()
        if raw["member_assignment"]:
            assignment = ConsumerProtocolMemberAssignment.decode(raw["member_assignment"])
            assigned = tuple(sorted(p for t, ps in assignment.assignment if t == topic for p in ps))
        members.append(Member(raw["member_id"], raw["client_id"], raw["client_host"], assigned))
    return sorted(members, key=lambda m: (m.partitions[:1] or (1 << 31,), m.member_id))


async def _describe(admin: AIOKafkaAdminClient, group: str, topic: str) -> dict[str, Any]:
    """State and members of one group, or `error` when the broker cannot describe it."""
    try:
        for response in await admin.describe_consumer_groups([group]):
            for description in response.to_object()["groups"]:
                if description["group"] != group:
                    continue
                if description["error_code"]:
                    return {"state": "unknown", "members": [], "error": f"error code {description['error_code']}"}
                members = [m.dump() for m in members_of(description, topic)]
                return {"state": description["state"] or "unknown", "members": members}
    except Exception as exc:  # a broker without DescribeGroups still reports offsets and lag
        return {"state": "unknown", "members": [], "error": repr(exc)}
    return {"state": "unknown", "members": []}


def with_worker_views(members: list[dict[str, Any]], workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Members whose assignment the broker did not tell, completed from their worker's own view."""
    views = {w.get("memberId"): w for w in workers}
    out = []
    for member in members:
        view = views.get(member["memberId"])
        if view is not None and not member["partitions"]:
            member = {**member, "partitions": sorted(view["partitions"]), "worker": view["worker"]}
        out.append(member)
    return out


def sole_owner(members: list[dict[str, Any]], partitions: list[int]) -> list[dict[str, Any]]:
    """A sole member owns every partition, even when the broker did not tell its assignment."""
    if len(members) == 1 and not members[0]["partitions"]:
        return [{**members[0], "partitions": sorted(partitions)}]
    return members


def _partitions(topic: str, ends: dict[TopicPartition, int], committed: dict[TopicPartition, Any],
                members: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    owned = {p: m["memberId"] for m in members for p in m["partitions"]}
    rows = []
    for tp in sorted((tp for tp in ends if tp.topic == topic), key=lambda tp: tp.partition):
        done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
        rows.append({"partition": tp.partition, "owner": owned.get(tp.partition), "committed": done,
                     "end": ends[tp], "lag": max(ends[tp] - done, 0)})  # fmt: skip
    return rows


async def busiest(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], now: float) -> list[dict[str, Any]]:
    """Resource tokens (the commands' key) with the most commands in the last RECENT_SECONDS, busiest first."""
    tps = [tp for tp in ends if tp.topic == COMMANDS_TOPIC and ends[tp] > 0]
    counts: Counter[tuple[str, int]] = Counter()
    if not tps:
        return []
    consumer.assign(tps)
    since_ms = (now - RECENT_SECONDS) * 1000
    for tp in tps:
        consumer.seek(tp, max(ends[tp] - TAIL_RECORDS, 0))
    remaining = set(tps)
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=1000)
        if not batches:
            break
        for tp, records in batches.items():
            for record in records:
                key = (record.key or b"").decode(errors="replace")
                if record.timestamp >= since_ms and RESOURCE_KEY.fullmatch(key):
                    counts[(key, tp.partition)] += 1
                if record.offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    return [{"resource": key, "partition": partition, "commands": n}
            for (key, partition), n in counts.most_common(BUSIEST)]  # fmt: skip


async def report(settings: Settings, workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Every service group with its members, each partition's owner, committed and end offsets, lag;
    the workers' own views (scheduling/streams/presence.py); the busiest resources of the last RECENT_SECONDS."""
    bootstrap = settings.kafka_bootstrap
    groups = service_groups(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        await consumer.topics()  # loads the metadata that partitions_for_topic reads
        tps = [TopicPartition(topic, p) for topic in (COMMANDS_TOPIC, DECISIONS_TOPIC)
               for p in sorted(consumer.partitions_for_topic(topic) or ())]  # fmt: skip
        ends = await consumer.end_offsets(tps)
        if settings.tansu:
            ends = await true_end_offsets(bootstrap, ends)
        out = []
        for group, topic in groups.items():
            described = await _describe(admin, group, topic)
            if topic == COMMANDS_TOPIC:
                described["members"] = with_worker_views(described["members"], workers)
            own = [tp for tp in tps if tp.topic == topic]
            committed = await admin.list_consumer_group_offsets(group, partitions=own)
            described["members"] = sole_owner(described["members"], [tp.partition for tp in own])
            rows = _partitions(topic, ends, committed, described["members"])
            out.append({"group": group, "topic": topic, **described, "partitions": rows,
                        "lag": sum(r["lag"] for r in rows)})  # fmt: skip
        return {"groups": out, "workers": workers, "busiest": await busiest(consumer, ends, time.time()),
                "busiestWindowSeconds": RECENT_SECONDS}  # fmt: skip
    finally:
        await admin.close()
        await consumer.stop()
