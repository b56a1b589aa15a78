"""Which worker holds which partition, as each worker tells it (a NATS key-value bucket).

The embedded broker answers DescribeGroups without the members' assignments, so `scheduling status`
could not name a partition's owner from the broker alone. Each worker therefore puts its own view
(the partitions of the commands topic it holds, whether its tables are recovered) every few seconds;
an entry expires when its worker stops refreshing it. On Apache Kafka the broker's answer is used
first (scheduling/streams/groups.py).
"""

from __future__ import annotations

import json
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

BUCKET = "SCHEDULING_WORKERS"
#: an entry outlives its worker by at most this long
TTL_SECONDS = 15.0
#: how often a worker refreshes its entry
REFRESH_SECONDS = 3.0


async def bucket(js: JetStreamContext) -> KeyValue:
    """The bucket the workers publish to, created if it is not there yet."""
    return await js.create_key_value(KeyValueConfig(bucket=BUCKET, ttl=TTL_SECONDS))


async def publish(kv: KeyValue, worker: str, view: dict[str, Any]) -> None:
    """Put this worker's view (`memberId`, `partitions`, `tablesRecovered`, `recoveryRemaining`)."""
    await kv.put(worker, json.dumps({"worker": worker, **view}).encode())


async def read(js: JetStreamContext) -> list[dict[str, Any]]:
    """Every live worker's last view, by worker name; none when no worker has published yet."""
    try:
        kv = await js.key_value(BUCKET)
        keys = await kv.keys()
    except (BucketNotFoundError, NoKeysError):
        return []
    views = []
    for key in sorted(keys):
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:  # expired since it was listed
            continue
        if entry.value:
            views.append(json.loads(entry.value))
    return views
