"""Command path benchmark: bookings over NATS request/reply on the embedded stack.

Starts `scheduling dev` on free ports in a temporary folder, opens slots for
several practitioners, then books them at a fixed concurrency and prints the
latency percentiles (request sent -> reply received, i.e. decided, journaled,
relayed and projected) and the throughput. Loopback only; stops by itself.

    python benchmarks/command_bench.py [--bookings 2000] [--concurrency 1 10 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jwt
import nats

SECRET = "bench-secret-that-is-long-enough-for-hs256"
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


def start_service(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {**os.environ, "SCHEDULING_JWT_SECRET": SECRET}
    for name in ("KAFKA_BROKER_URL", "NATS_URL", "DATABASE_URL"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "scheduling", "dev", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=open(data_dir / "dev.log", "w"), text=True, env=env,  # noqa: SIM115
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("ready "):
            return process, dict(part.split("=", 1) for part in line.split()[1:])
    raise RuntimeError("scheduling dev did not become ready")


async def run(nats_url: str, bookings: int, concurrency: int, round_no: int) -> dict[str, float]:
    token = jwt.encode({"tenant": "bench", "sub": "bench", "scope": "scheduling:write"}, SECRET)
    headers = {"Authorization": f"Bearer {token}"}
    nc = await nats.connect(nats_url)

    async def request(subject: str, body: dict[str, object]) -> dict[str, object]:
        msg = await nc.request(f"scheduling.cmd.{subject}", json.dumps(body).encode(), timeout=60, headers=headers)
        reply: dict[str, object] = json.loads(msg.data)
        return reply

    practitioners = 8
    per = -(-bookings // practitioners)
    slot_ids: list[str] = []
    for p in range(practitioners):
        schedule = await request(
            "schedule.create",
            {
                "actor": {"reference": f"Practitioner/bench-{round_no}-{p}", "type": "Practitioner"},
                "locationId": "bench",
                "serviceType": "gp",
                "planningHorizon": {"start": "2028-01-03T00:00:00Z", "end": "2028-12-31T00:00:00Z"},
                "availabilityPattern": {
                    "windows": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri"], "startTime": "08:00",
                                 "endTime": "16:00"}],
                    "slotMinutes": 15,
                    "timezone": "UTC",
                },
            },
        )  # fmt: skip
        assert schedule["ok"], schedule
        sid = schedule["data"]["id"]  # type: ignore[index]
        # slots are minted deterministically, but the read side is simplest: ask the HTTP view? keep NATS-only:
        slot_ids += await _slot_ids(nc, headers, sid, per)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for sid in slot_ids[:bookings]:
        queue.put_nowait(sid)
    latencies: list[float] = []
    refused = 0

    async def client() -> None:
        nonlocal refused
        while not queue.empty():
            sid = queue.get_nowait()
            started = time.perf_counter()
            reply = await request("appointment.book", {"slotId": sid, "patientId": "bench"})
            latencies.append(time.perf_counter() - started)
            refused += 0 if reply["ok"] else 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await nc.close()
    latencies.sort()
    return {
        "n": len(latencies),
        "refused": refused,
        "throughput": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def _slot_ids(nc: nats.aio.client.Client, headers: dict[str, str], schedule_id: str, count: int) -> list[str]:
    """Slot ids of a schedule, read from its slot.opened events on JetStream."""
    js = nc.jetstream()
    sub = await js.subscribe("scheduling.events.slot.opened", ordered_consumer=True)
    ids: list[str] = []
    try:
        while len(ids) < count:
            msg = await sub.next_msg(timeout=30)
            event = json.loads(msg.data)
            if event["data"]["scheduleId"] == schedule_id:
                ids.append(event["data"]["id"])
    finally:
        await sub.unsubscribe()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        process, urls = start_service(Path(folder))
        try:
            print(f"{'clients':>7} {'bookings':>8} {'refused':>7} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7}")
            for i, concurrency in enumerate(args.concurrency):
                r = asyncio.run(run(urls["nats"], args.bookings, concurrency, i))
                print(f"{concurrency:>7} {r['n']:>8} {r['refused']:>7} {r['throughput']:>7.0f} "
                      f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}", flush=True)  # fmt: skip
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


if __name__ == "__main__":
    main()
