"""The write path side by side: this service against a lock-based peer and the raw Kafka pipe, in one run.

Starts `scheduling dev` (embedded Kafka-protocol broker, NATS JetStream, PostgreSQL) and, on the same NATS
and PostgreSQL, the lock-based peer (`benchmarks/lock_peer.py`). Each workload runs on the service, then on
the peer, interleaved, with the same client; the table gives throughput, latency percentiles, the ratio
service/peer and the machine's load. Last, both are paced at half the service's peak rate (open loop: a
booking every 1/rate seconds), the load at which the latency target is read. The raw pipe is an aiokafka
producer and consumer on the same broker.

    python benchmarks/side_by_side.py [--rounds 1] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import jwt
import nats
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from command_bench import SECRET, start_service

HERE = Path(__file__).resolve().parent
#: the length of the peer's slots
SLOT = timedelta(minutes=15)


@dataclass
class Result:
    rate: float
    p50: float
    p99: float
    ok: int

    def cell(self) -> str:
        return f"{self.rate:7.0f}/s p50 {self.p50:6.1f} p99 {self.p99:6.1f} ms ok {self.ok}"


Book = Callable[[str, str], Awaitable[dict[str, Any]]]


async def run_bookings(book: Book, slots: list[str], clients: int) -> Result:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for slot in slots:
        queue.put_nowait(slot)
    latencies: list[float] = []
    ok = 0

    async def client() -> None:
        nonlocal ok
        while not queue.empty():
            slot = queue.get_nowait()
            started = time.perf_counter()
            reply = await book(slot, f"pat-{uuid.uuid4().hex[:8]}")
            latencies.append((time.perf_counter() - started) * 1000)
            ok += bool(reply.get("ok"))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(len(latencies) / elapsed, statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], ok)


async def run_paced(book: Book, slots: list[str], rate: float) -> Result:
    """Open loop: one booking every 1/`rate` seconds whatever the answers, as independent callers arrive."""
    latencies: list[float] = []
    ok = 0

    async def one(slot: str) -> None:
        nonlocal ok
        started = time.perf_counter()
        reply = await book(slot, f"pat-{uuid.uuid4().hex[:8]}")
        latencies.append((time.perf_counter() - started) * 1000)
        ok += bool(reply.get("ok"))

    started = time.perf_counter()
    calls = []
    for i, slot in enumerate(slots):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))  # pacing the load, not a sync
        calls.append(asyncio.create_task(one(slot)))
    await asyncio.gather(*calls)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(len(latencies) / elapsed, statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], ok)


def _booker(nc: Any, subject: str, token: str) -> Book:
    headers = {"Authorization": f"Bearer {token}"}

    async def book(slot: str, patient: str) -> dict[str, Any]:
        body = json.dumps({"slotId": slot, "patientId": patient}).encode()
        msg = await nc.request(subject, body, timeout=60, headers=headers)
        reply: dict[str, Any] = json.loads(msg.data)
        return reply

    return book


async def service_slots(http: str, nc: Any, token: str, count: int) -> list[str]:
    """Open `count` slots on fresh practitioners' schedules (5-minute slots, 08:00-20:00 UTC)."""
    slots: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(http, headers=headers) as session:
        while len(slots) < count:
            body = {"actor": {"reference": f"Practitioner/{uuid.uuid4().hex[:10]}", "type": "Practitioner"},
                    "locationId": "bench", "serviceType": "gp",
                    "planningHorizon": {"start": "2027-11-01T00:00:00Z", "end": "2027-11-06T00:00:00Z"},
                    "availabilityPattern": {"windows": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri"],
                                                         "startTime": "08:00", "endTime": "20:00"}],
                                            "slotMinutes": 5, "timezone": "UTC"}}  # fmt: skip
            msg = await nc.request("scheduling.cmd.schedule.create", json.dumps(body).encode(), timeout=60,
                                   headers=headers)  # fmt: skip
            schedule = json.loads(msg.data)["data"]
            cursor = None
            while True:
                params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
                async with session.get(f"/schedules/{schedule['id']}/slots", params=params) as response:
                    page = await response.json()
                slots += [s["id"] for s in page["data"]]
                cursor = page["nextCursor"]
                if not cursor:
                    break
    return slots[:count]


async def peer_slots(dsn: str, count: int) -> list[str]:
    """Fresh free slots of the peer, 15 minutes each, back to back (the peer checks the patient's time)."""
    ids = [f"ps-{uuid.uuid4().hex}" for _ in range(count)]
    first = datetime(2027, 1, 4, 8, tzinfo=UTC) + timedelta(days=random.randrange(3000))
    records = [(i, "free", 1, first + n * SLOT, first + (n + 1) * SLOT) for n, i in enumerate(ids)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("peer_slots", records=records,
                                         columns=["id", "status", "version", "starts", "ends"])  # fmt: skip
    finally:
        await conn.close()
    return ids


async def raw_pipe(bootstrap: str, messages: int = 20_000) -> float:
    """1 KB records produced (linger 5 ms) and consumed back on the same broker: records per second."""
    topic = f"bench-pipe-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                fetch_max_wait_ms=50)  # fmt: skip
    await producer.start()
    await consumer.start()
    payload = b"x" * 1024
    started = time.perf_counter()
    try:
        sends = [await producer.send(topic, payload) for _ in range(messages)]
        await asyncio.gather(*sends)
        seen = 0
        while seen < messages:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen += len(records)
    finally:
        await producer.stop()
        await consumer.stop()
    return messages / (time.perf_counter() - started)


def start_peer(ready: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """The peer on the service's NATS and on its own database of the service's PostgreSQL."""

    async def create() -> None:
        admin = await asyncpg.connect(ready["postgres"])
        await admin.execute("CREATE DATABASE peer")
        await admin.close()

    asyncio.run(create())
    dsn = ready["postgres"].rsplit("/", 1)[0] + "/peer"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    peer = subprocess.Popen([sys.executable, str(HERE / "lock_peer.py"), ready["nats"], dsn, SECRET],
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert peer.stdout is not None and peer.stdout.readline().startswith("peer ready")
    return peer, dsn


async def measure(args: argparse.Namespace, ready: dict[str, str], peer_dsn: str) -> None:
    token = jwt.encode({"tenant": "bench", "sub": "bench", "scope": "scheduling:read scheduling:write"}, SECRET)
    nc = await nats.connect(ready["nats"])
    ours = _booker(nc, "scheduling.cmd.appointment.book", token)
    theirs = _booker(nc, "peer.cmd.appointment.book", token)
    scale = 4 if args.quick else 1
    workloads = [("distinct slots, 1 client", 1, 200 // scale, False),
                 ("distinct slots, 50 clients", 50, 1000 // scale, False),
                 ("distinct slots, 200 clients", 200, 1000 // scale, False),
                 ("200 bookings of 20 hot slots", 50, 200, True)]  # fmt: skip
    rows = []
    for _ in range(args.rounds):
        for name, clients, bookings, hot in workloads:
            count = 20 if hot else bookings
            ours_slots = await service_slots(ready["http"], nc, token, count)
            peer_ids = await peer_slots(peer_dsn, count)
            if hot:
                ours_slots, peer_ids = ours_slots * 10, peer_ids * 10
            mine = await run_bookings(ours, ours_slots, clients)
            other = await run_bookings(theirs, peer_ids, clients)
            rows.append((name, mine, other))
        # the latency target's load: half of the service's peak booking rate (distinct slots), the same rate for both
        half = max(mine.rate for name, mine, _ in rows if name.startswith("distinct")) / 2
        count = max(50, int(half * (15 if not args.quick else 5)))
        paced = (
            await run_paced(ours, await service_slots(ready["http"], nc, token, count), half),
            await run_paced(theirs, await peer_slots(peer_dsn, count), half),
        )
        rows.append((f"paced at {half:.0f}/s (half the peak)", *paced))
    pipe = await raw_pipe(ready["kafka"])
    await nc.close()
    print(f"\n{'workload':30} {'this service':48} {'lock-based peer':48} ratio")
    for name, mine, other in rows:
        print(f"{name:30} {mine.cell():48} {other.cell():48} {mine.rate / other.rate:5.2f}")
    best = max(mine.rate for name, mine, _ in rows if not name.startswith("paced"))
    print(f"\nraw Kafka pipe: {pipe:,.0f} records/s; the service's best rate is {best / pipe:.1%} of it")
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")


def main(args: argparse.Namespace) -> None:
    process, ready = start_service(Path(tempfile.mkdtemp(prefix="side-by-side-")))
    peer = None
    try:
        peer, peer_dsn = start_peer(ready)
        asyncio.run(measure(args, ready, peer_dsn))
    finally:
        if peer is not None:
            peer.terminate()
            peer.wait(10)
        process.send_signal(signal.SIGTERM)
        process.wait(60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a quarter of the bookings")
    main(parser.parse_args())
